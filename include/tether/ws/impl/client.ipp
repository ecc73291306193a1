// tether/ws/impl/client.ipp: ws::client's entry points over client_impl (its parts are in
// the files included here).
#pragma once

#include <tether/ws/impl/client_close.ipp>
#include <tether/ws/impl/client_connect.ipp>
#include <tether/ws/impl/client_events.ipp>
#include <tether/ws/impl/client_run.ipp>
#include <tether/ws/impl/client_session.ipp>
#include <tether/ws/impl/client_write.ipp>

namespace tether::ws {

const char* to_string(connection_state s) noexcept {
  switch (s) {
    case connection_state::idle: return "idle";
    case connection_state::connecting: return "connecting";
    case connection_state::open: return "open";
    case connection_state::reconnecting: return "reconnecting";
    case connection_state::closing: return "closing";
    case connection_state::closed: return "closed";
  }
  return "unknown";
}

namespace detail {
std::shared_ptr<client_impl> make_client_impl(const asio::any_io_executor& ex, options opts) {
  return std::make_shared<client_impl>(ex, std::move(opts));
}

void start_run(const std::shared_ptr<client_impl>& impl, void_handler h) {
  asio::dispatch(impl->strand, [impl, h = std::move(h)]() mutable {
    if (impl->run_started || impl->finished) {
      return complete_later(impl->strand, std::move(h),
                            make_error_code(impl->finished ? error::client_closed : error::busy));
    }
    impl->run_started = true;
    asio::co_spawn(impl->strand, impl->run(),
                   [impl, h = std::move(h)](const std::exception_ptr& ep, error_code ec) mutable {
                     if (ep) ec = make_error_code(error::protocol_error);
                     // run's handler first, so that whoever awaited close() sees run ended.
                     complete_later(impl->strand, std::move(h), ec);
                     impl->finish();
                   });
  });
}

void start_next_event(const std::shared_ptr<client_impl>& impl, event_handler h) { impl->next_event(std::move(h)); }

void start_send(const std::shared_ptr<client_impl>& impl, message m, std::chrono::steady_clock::duration ttl,
                send_handler h) {
  impl->send(std::move(m), ttl, std::move(h));
}

void start_ping(const std::shared_ptr<client_impl>& impl, std::string payload, void_handler h) {
  if (payload.size() > 125) {
    return complete_later(impl->strand, std::move(h), make_error_code(error::invalid_argument));
  }
  asio::dispatch(impl->strand, [impl, p = std::move(payload), h = std::move(h)]() mutable {
    auto* c = impl->conn;
    if (!c || !c->open || c->ended || impl->close_requested)
      return complete_later(impl->strand, std::move(h), make_error_code(error::not_connected));
    c->hold();
    asio::co_spawn(
        impl->strand,
        [impl, c, p = std::move(p)]() -> asio::awaitable<error_code> {
          while (!c->ended && c->control_busy) co_await c->control_cv.wait();
          if (c->ended) {
            c->release();
            co_return make_error_code(error::not_connected);
          }
          c->control_busy = true;
          c->ping_sent = clock::now();
          websocket::ping_data pd(p.data(), p.size());
          auto [ec] = co_await c->ws.async_ping(pd, nothrow);
          c->control_busy = false;
          c->control_cv.notify();
          c->release();
          co_return ec;
        },
        [impl, h = std::move(h)](const std::exception_ptr&, error_code ec) mutable {
          complete_later(impl->strand, std::move(h), ec);
        });
  });
}

void start_close(const std::shared_ptr<client_impl>& impl, close_reason r, void_handler h) {
  asio::dispatch(impl->strand, [impl, r = std::move(r), h = std::move(h)]() mutable {
    impl->close(std::move(r), std::move(h));
  });
}

connection_state get_state(const client_impl& impl) noexcept { return impl.state.load(); }
std::optional<std::chrono::microseconds> get_rtt(const client_impl& impl) noexcept {
  const auto v = impl.rtt_us.load();
  if (v < 0) return std::nullopt;
  return std::chrono::microseconds{v};
}
/// Reaches the implementation of a client (tests and fuzzers that compile it in).
struct client_access {
  static client_impl& impl(client& c) noexcept { return *c.impl_; }
};

const options& get_options(const client_impl& impl) noexcept { return impl.opts; }
asio::any_io_executor get_executor(const client_impl& impl) noexcept { return impl.inner; }

}  // namespace detail
}  // namespace tether::ws
