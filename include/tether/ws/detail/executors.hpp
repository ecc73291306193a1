// tether/ws/detail/executors.hpp: which executor a client's connection lives on: a strand of
// its own over the application's executor, unless that executor already serializes everything
// the connection does. Tested by a table in tests/unit/ws/executors.cpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace tether::ws::detail {

namespace asio = boost::asio;

/// Whether the application promised Asio that one thread at a time runs `ctx` and uses its I/O
/// objects: an io_context constructed with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE or _UNSAFE_IO
/// (no locking in its scheduler or in its reactor's I/O). Asio itself is then only correct if
/// the promise holds, and a strand has nothing left to serialize.
inline bool single_threaded(asio::io_context& ctx) {
#if defined(BOOST_ASIO_HAS_IOCP)
  (void)ctx;
  return false;
#else
  const int hint = asio::use_service<asio::detail::scheduler>(ctx).concurrency_hint();
  return !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(SCHEDULER, hint) || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
#endif
}

/// The executor the connection's state lives on: a strand over the application's executor.
/// When that is a plain io_context executor the strand wraps the concrete type, so that every
/// operation on the strand goes through one type erasure (any_io_executor), not two. None when
/// the application's executor serializes everything already: it is a strand, or its io_context
/// was promised one thread (single_threaded).
inline asio::any_io_executor strand_over(const asio::any_io_executor& ex) {
  if (const auto* io = ex.target<asio::io_context::executor_type>()) {
    if (single_threaded(io->context())) return ex;
    return asio::make_strand(*io);
  }
  // Already a strand: it serializes the connection's handlers as well as a second one would.
  if (ex.target<asio::strand<asio::io_context::executor_type>>()) return ex;
  return asio::make_strand(ex);
}

}  // namespace tether::ws::detail
