// tether/ws/detail/erased_handler.hpp: a type-erased completion handler that keeps its own
// executor beside it, taken once when the operation starts.
//
// Why: asio::any_completion_handler answers "which executor runs you?" by converting the
// handler's executor into an any_completion_executor, which allocates, on every ask. The
// client asks once per message received and once per message sent; an any_io_executor taken
// at initiation (where the handler's type is still known) is a copy, and dispatching through
// it costs no conversion.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/system_executor.hpp>

#include <type_traits>
#include <utility>

namespace tether::ws::detail {

template <class Signature>
struct erased_handler {
  boost::asio::any_completion_handler<Signature> h;
  /// The handler's own executor; empty when it has none (the caller's fallback runs it).
  boost::asio::any_io_executor ex;
  /// False when its executor is not an any_io_executor: then `h` is asked at completion.
  bool ex_known = true;

  erased_handler() = default;
  erased_handler(boost::asio::any_completion_handler<Signature> handler, boost::asio::any_io_executor own,
                 bool own_known)
      : h(std::move(handler)), ex(std::move(own)), ex_known(own_known) {}
  erased_handler(erased_handler&&) noexcept = default;
  // Never assigned: Boost 1.81's any_completion_handler move-assignment recurses without end.
  erased_handler& operator=(erased_handler&&) = delete;

  explicit operator bool() const noexcept { return static_cast<bool>(h); }
  template <class... Args>
  void operator()(Args&&... args) && {
    std::move(h)(std::forward<Args>(args)...);
  }
};

/// Erases `handler`, keeping its executor when it has one that an any_io_executor can hold.
template <class Signature, class Handler>
erased_handler<Signature> erase_handler(Handler handler) {
  namespace asio = boost::asio;
  using own = asio::associated_executor_t<Handler, asio::any_io_executor>;
  // A handler without an executor of its own answers with whichever candidate it is given.
  constexpr bool none = std::is_same_v<own, asio::any_io_executor> &&
                        std::is_same_v<asio::associated_executor_t<Handler, asio::system_executor>,
                                       asio::system_executor>;
  asio::any_io_executor ex;
  bool known = true;
  if constexpr (!none) {
    if constexpr (std::is_convertible_v<own, asio::any_io_executor>)
      ex = asio::get_associated_executor(handler, asio::any_io_executor());
    else
      known = false;
  }
  return {asio::any_completion_handler<Signature>(std::move(handler)), std::move(ex), known};
}

}  // namespace tether::ws::detail
