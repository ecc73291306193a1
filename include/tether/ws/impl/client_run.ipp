// tether/ws/impl/client_run.ipp: run(): attempts and reconnections, as the reconnect FSM decides.
#pragma once

#include <tether/ws/detail/client_impl.hpp>

namespace tether::ws::detail {

inline asio::awaitable<error_code> client_impl::run() {
  auto self = shared_from_this();
  // Bad settings end run at once, reported as an event too.
  auto fail = [this](error_code ec) {
    deliver_status(disconnected{1006, {}, ec, 0});
    return ec;
  };
  auto url = net::parse_url(opts.url);
  if (!url) co_return fail(url.error());
  if (url->scheme != net::scheme::ws && url->scheme != net::scheme::wss)
    co_return fail(make_error_code(error::unsupported_scheme));
  if (url->secure()) {
    if (opts.tls.insecure_skip_verify)
      log(net::log_level::warn, "tether.ws: TLS verification is OFF (insecure_skip_verify)");
    auto ctx = net::detail::make_client_context(opts.tls);
    if (!ctx) co_return fail(ctx.error());
    tls_ctx = *ctx;
  }
  reconnect_fsm fsm(opts.reconnect);
  if (opts.watch_network) watch_network();
  handshake_request req{opts.headers, opts.token, 0};
  error_code final_ec;
  for (std::uint32_t attempt = 0;; ) {
    if (close_requested) break;
    state = attempt == 0 ? connection_state::connecting : connection_state::reconnecting;
    req.attempt = attempt;
    if (opts.before_connect) opts.before_connect(req);
    if (opts.log.enabled(net::log_level::info))
      log(net::log_level::info, "tether.ws: connecting to " + url->redacted());
    connection c(strand, tls_ctx.get(), opts);
    conn = &c;
    auto cr = co_await connect(c, *url, req);
    attempt_outcome out;
    if (!cr.ec && !close_requested) {
      state = connection_state::open;
      if (opts.metrics) opts.metrics->count(net::metric::ws_connections, {}, 1);
      // An exception (an application's event handler that throws, run inline) must not
      // free `c` under the writer and pinger: they end first, then it goes on.
      std::exception_ptr thrown;
      try {
        // The handshake's completion was a turn of its own: the application hears at once,
        // inline when its executor is this one, and anything it does from there (a send, a
        // close) finds the connection open.
        if (c.hello) deliver_status(std::move(*c.hello), delivery::dispatched);
        c.hello.reset();
        out = co_await serve(c);
      } catch (...) {
        thrown = std::current_exception();
      }
      if (thrown) {
        conn = nullptr;
        co_await wind_down(c);
        std::rethrow_exception(thrown);
      }
      conn = nullptr;
      deliver_status(disconnected{out.close_code,
                           close_requested ? closing.reason : std::string(c.ws.reason().reason.c_str()),
                           out.error, 0});
    } else {
      conn = nullptr;
      out.error = cr.ec ? cr.ec : error_code{asio::error::operation_aborted};
      out.http_status = cr.status;
      out.retry_after = cr.retry_after;
    }
    // Whatever still uses `c` (a close or ping that started meanwhile, the transport's own
    // socket write) ends before `c` does.
    c.ws.next_layer().close();
    co_await c.retire();
    co_await flush(c.ws.next_layer());
    if (close_requested) break;
    const auto d = fsm.next(out, clock::now());
    if (!d.retry) {
      if (!out.opened) deliver_status(disconnected{1006, {}, out.error, out.http_status});
      final_ec = d.error;
      break;
    }
    attempt = d.attempt;
    state = connection_state::reconnecting;
    const auto cause = reconnect_cause(out);
    if (opts.metrics) opts.metrics->count(net::metric::ws_reconnects, cause_label(cause), 1);
    deliver_status(reconnecting{d.attempt, d.delay, cause, out.http_status, out.opened ? out.close_code : std::uint16_t{0}});
    if (close_requested) break;
    network_changed = false;
    backoff_timer.expires_after(d.delay);
    co_await backoff_timer.async_wait(nothrow);
  }
  co_return final_ec;
}

}  // namespace tether::ws::detail
