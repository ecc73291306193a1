// Helpers for ws::client tests: pull events of a wanted kind with a bound.
#pragma once

#include <tether/ws.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <variant>

namespace tether::test {

constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Options for a loopback test: fast timeouts, deterministic jitter, quick reconnects.
inline ws::options fast_options(std::string url) {
  ws::options o;
  o.url = std::move(url);
  o.connect_timeout = std::chrono::seconds(5);
  o.handshake_timeout = std::chrono::seconds(5);
  o.close_timeout = std::chrono::seconds(2);
  o.reconnect.seed = 1234;
  o.reconnect.backoff.initial = std::chrono::milliseconds(20);
  o.reconnect.backoff.max = std::chrono::milliseconds(200);
  o.reconnect.backoff.min = std::chrono::milliseconds(5);
  return o;
}

/// Pulls events until one of type T arrives; events of other types are passed to `seen`.
template <class T, class Seen>
boost::asio::awaitable<T> next_of(ws::client& c, Seen&& seen) {
  for (;;) {
    std::tuple<error_code, ws::event> r = co_await c.async_next_event(nothrow);
    if (std::get<0>(r)) throw boost::system::system_error(std::get<0>(r), "next_event");
    if (auto* p = std::get_if<T>(&std::get<1>(r))) {
      T out(std::move(*p));
      co_return out;
    }
    seen(std::get<1>(r));
  }
}
template <class T>
boost::asio::awaitable<T> next_of(ws::client& c) {
  return next_of<T>(c, [](const ws::event&) {});
}

/// One session without reconnects: connect, send `text`, read the echo into `echoed`, close.
/// Returns how the session ended (empty when the echo came back and the close was clean).
inline error_code echo_once(ws::options o, const std::string& text, std::string* echoed = nullptr) {
  boost::asio::io_context ioc;
  error_code result;
  o.reconnect.enabled = false;
  run_bounded(ioc, [&]() -> boost::asio::awaitable<void> {
    ws::client c(ioc.get_executor(), o);
    c.async_run([&](error_code ec) { result = ec; });
    auto [ec, ev] = co_await c.async_next_event(nothrow);
    if (std::holds_alternative<ws::connected>(ev)) {
      co_await c.async_send_text(text, nothrow);
      auto m = co_await next_of<ws::message>(c);
      if (echoed) *echoed = m.data;
      co_await c.async_close(nothrow);
    } else if (auto* d = std::get_if<ws::disconnected>(&ev)) {
      result = d->error;
    }
  }());
  return result;
}

}  // namespace tether::test
