// tether/ws/impl/client_close.ipp: close(): our close handshake, and the end of the client.
#pragma once

#include <tether/ws/detail/client_impl.hpp>

namespace tether::ws::detail {

inline void client_impl::close(close_reason r, void_handler h) {
  if (finished) return complete_later(strand, std::move(h), error_code{});
  if (h) close_waiters.push_back(std::move(h));
  if (close_requested) return;
  {
    const auto lk = locked();
    close_requested = true;
  }
  closing = std::move(r);
  if (!run_started) return finish();
  state = connection_state::closing;
  backoff_timer.cancel();
  space_cv.notify();
  fail_outbox(asio::error::operation_aborted);
  if (conn) {
    if (conn->open) {
      conn->close_pending = true;
      conn->hold();
      asio::co_spawn(strand, close_connection(conn), asio::detached);
    }
    else
      conn->ws.next_layer().close();  // still connecting: abandon the attempt
  }
}

// Our Close goes out at the next frame boundary; the reader goes on delivering what the
// peer sends until its Close (RFC 6455 §5.5.1: it may send data before answering), which
// ends the connection. The close timeout bounds the wait.
inline asio::awaitable<void> client_impl::close_connection(connection* c) {
  auto self = shared_from_this();
  while (!c->ended && (c->control_busy || c->writing_large != connection::large_write::none)) co_await c->control_cv.wait();
  if (c->ended) {
    c->close_pending = false;
    c->control_cv.notify();
    c->release();
    co_return;
  }
  c->control_busy = true;
  c->arm(opts.close_timeout, error::close_timeout);
  auto& tr = c->ws.next_layer();
  if (tr.can_append_frame()) {
    tr.append_close(closing.code, closing.reason);
    co_await flush(tr);  // a failure shows in the reader
  } else {
    tr.close();  // the socket already failed
  }
  c->control_busy = false;
  c->close_pending = false;
  c->control_cv.notify();
  c->release();
}

inline void client_impl::finish() {
  {
    const auto lk = locked();
    finished = true;
  }
  stop_watching();
  state = connection_state::closed;
  fail_outbox(asio::error::operation_aborted);
  expiry_timer.cancel();
  const auto lk = locked();
  if (event_waiter && events.empty()) {
    auto h = take_waiter();
    complete_later(strand, std::move(h), make_error_code(error::client_closed), event{});
  }
  for (auto& h : close_waiters) complete_later(strand, std::move(h), error_code{});
  close_waiters.clear();
}

}  // namespace tether::ws::detail
