// tether/ws/impl/client_connect.ipp: one connection attempt: DNS, TCP, the proxy, TLS, the upgrade
// and its checks.
#pragma once

#include <tether/ws/detail/client_impl.hpp>
#include <tether/ws/detail/session_rules.hpp>

namespace tether::ws::detail {

inline asio::awaitable<error_code> client_impl::tls_to_proxy(tcp::socket& s, const net::proxy_config& proxy) {
  if (!tls_ctx && !proxy_tls_ctx) {
    auto made = net::detail::make_client_context(opts.tls);
    if (!made) co_return made.error();
    proxy_tls_ctx = *made;
  }
  asio::ssl::context& ctx = tls_ctx ? *tls_ctx : *proxy_tls_ctx;
  const std::chrono::steady_clock::duration limit = opts.connect_timeout;
  co_return co_await net::detail::start_tls_relay(s, ctx, proxy, opts.tls, limit);
}

inline asio::awaitable<client_impl::connect_result> client_impl::connect(connection& c,
                                                                        const net::endpoint_url& url,
                                                                        const handshake_request& req) {
  connect_result r;
  auto& ws = c.ws;
  auto& tr = ws.next_layer();
  // DNS + TCP
  c.arm(opts.connect_timeout, error::connect_timeout);
  tcp::resolver resolver(strand);
  auto picked = net::choose_proxy(opts.proxy, url);
  if (!picked) {
    c.disarm();
    log(net::log_level::error, "tether.ws: invalid proxy URL (options.proxy or the environment): " +
                                   picked.error().message());
    r.ec = picked.error();
    co_return r;
  }
  const std::optional<net::proxy_config> proxy = *picked;
  // Arguments of co_awaited calls are named locals, never class temporaries: GCC 12
  // miscompiles temporaries that live across a co_await (they are copied bitwise).
  const std::string hop = net::detail::first_hop_host(proxy, url);
  const std::uint16_t hop_port = net::detail::first_hop_port(proxy, url);
  error_code rec;
  if (connector) {
    rec = connector(tr.socket());
  } else {
    auto [dec, endpoints] = co_await net::detail::resolve(resolver, hop, hop_port);
    rec = dec;
    if (!rec && !c.fail_reason) {
      auto [cec, ep] = co_await asio::async_connect(tr.socket(), endpoints, nothrow);
      rec = cec;
    }
  }
  if (!rec && !c.fail_reason && proxy && proxy->kind == net::proxy_kind::https) {
    rec = co_await tls_to_proxy(tr.socket(), *proxy);
    if (rec && !c.fail_reason)
      log(net::log_level::warn, "tether.ws: TLS with proxy " + proxy->redacted() + ": " + rec.message());
  }
  if (!rec && !c.fail_reason && proxy) {
    const std::string origin_host = url.host;
    const auto tunnel = co_await net::detail::open_tunnel(tr.socket(), *proxy, origin_host, url.port);
    rec = tunnel.ec;
    if (rec && !c.fail_reason)
      log(net::log_level::warn, "tether.ws: proxy " + proxy->redacted() + " gave no tunnel to " +
                                    url.host_header() + ": " + rec.message() +
                                    (tunnel.status ? " (HTTP " + std::to_string(tunnel.status) + ")" : ""));
  } else if (rec && !c.fail_reason && proxy) {
    log(net::log_level::warn, "tether.ws: cannot connect to proxy " + proxy->redacted() + ": " + rec.message());
  }
  c.disarm();
  if (c.fail_reason || rec) {
    r.ec = c.fail_reason ? c.fail_reason : rec;
    co_return r;
  }
  error_code ignored;
  tr.socket().set_option(tcp::no_delay(true), ignored);

  c.arm(opts.handshake_timeout, error::handshake_timeout);
  if (auto* tls = tr.tls()) {
    if (auto ec = net::detail::prepare_client_stream(tls->native_handle(), url.host, opts.tls)) {
      c.disarm();
      r.ec = ec;
      co_return r;
    }
    auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, nothrow);
    if (hec || c.fail_reason) {
      c.disarm();
      r.ec = c.fail_reason ? c.fail_reason : net::detail::explain_handshake_failure(tls->native_handle(), hec);
      co_return r;
    }
    std::string chain_pins;
    if (auto pec = net::detail::check_pins(tls->native_handle(), opts.tls, chain_pins)) {
      c.disarm();
      log(net::log_level::error, "tether.ws: " + url.host_header() + ": " + pec.message() +
                                     " (the verified chain's pins: " + chain_pins + ")");
      r.ec = pec;
      co_return r;
    }
  }

  ws.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                               websocket::stream_base::none(), false});
  ws.set_option(websocket::stream_base::decorator(
      [this, &req](websocket::request_type& m) {
        m.set(beast::http::field::user_agent, "tether/" TETHER_VERSION_STRING);
        if (!opts.subprotocols.empty()) {
          std::string list;
          for (const auto& p : opts.subprotocols) list += (list.empty() ? "" : ", ") + p;
          m.set(beast::http::field::sec_websocket_protocol, list);
        }
        for (const auto& [k, v] : req.headers) m.insert(k, v);
      }));
  websocket::permessage_deflate pmd;
  pmd.client_enable = opts.permessage_deflate;
  ws.set_option(pmd);
  ws.auto_fragment(false);
  ws.write_buffer_bytes(std::max<std::size_t>(opts.write_coalesce_bytes, 8192));
  ws.read_message_max(opts.max_message_size);
  ws.control_callback([this, &c](websocket::frame_type kind, beast::string_view payload) {
    if (kind != websocket::frame_type::pong) return;
    c.traffic = true;
    if (c.ping_sent == clock::time_point{}) return;
    const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - c.ping_sent);
    rtt_us = rtt.count();
    if (opts.metrics) opts.metrics->observe(net::metric::ws_ping_rtt, {}, rtt);
    // Telemetry, not a message: when the application is behind, it is not queued.
    if (opts.pong_events) deliver_status(pong{std::string(payload), rtt});
  });

  auto target_url = url;
  if (!req.token.empty()) net::append_query_parameter(target_url, opts.token_parameter, req.token);
  websocket::response_type res;
  const std::string host = url.host_header();
  auto [wec] = co_await ws.async_handshake(res, host, target_url.target, nothrow);
  c.disarm();
  if (c.fail_reason) wec = c.fail_reason;
  handshake_answer answer;
  // Only a response Beast actually read says anything about the status (a default response
  // object reads as 200); else what the transport saw of one.
  answer.declined = wec == websocket::error::upgrade_declined;
  answer.failed = answer.declined ? error_code{} : wec;
  answer.status = answer.declined ? res.result_int() : (c.fail_reason ? 0u : tr.response_status());
  if (auto it = res.find(beast::http::field::retry_after); answer.declined && it != res.end())
    answer.retry_after = std::string(it->value());
  if (!wec) {
    for (auto it = res.find(beast::http::field::sec_websocket_protocol);
         it != res.end() && it->name() == beast::http::field::sec_websocket_protocol; ++it)
      answer.protocols.emplace_back(it->value());
    for (auto it = res.find(beast::http::field::sec_websocket_extensions);
         it != res.end() && it->name() == beast::http::field::sec_websocket_extensions; ++it)
      answer.extensions.emplace_back(it->value());
  }
  const auto verdict = judge_handshake(answer, handshake_offer{&opts.subprotocols, opts.permessage_deflate},
                                       std::chrono::system_clock::now());
  if (verdict.ec) {
    if (verdict.close_socket) tr.close();
    r.ec = verdict.ec;
    r.status = verdict.status;
    r.retry_after = verdict.retry_after;
    co_return r;
  }
  c.deflate = verdict.deflate;
  connected ev;
  for (const auto& f : res) ev.response_headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  if (auto it = res.find(beast::http::field::sec_websocket_protocol); it != res.end())
    ev.subprotocol = std::string(it->value());
  c.open = true;
  c.hello.emplace(std::move(ev));  // run() announces it once the connection is serving
  co_return r;
}

}  // namespace tether::ws::detail
