#pragma once

#include <tether/net/retry.hpp>
#include <tether/ws/detail/reconnect_fsm.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/websocket/error.hpp>

#include <algorithm>
#include <atomic>
#include <random>

namespace tether::ws::detail {

std::uint32_t reconnect_fsm::fresh_seed() noexcept {
  static const std::uint64_t base = [] {
    try {
      std::random_device rd;
      return (std::uint64_t{rd()} << 32) ^ rd();
    } catch (...) {  // no system source: the clock still tells processes apart
      return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
  }();
  static std::atomic<std::uint64_t> calls{0};
  std::uint64_t z = base + 0x9E3779B97F4A7C15ull * (calls.fetch_add(1, std::memory_order_relaxed) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}

bool reconnect_fsm::is_fatal(const attempt_outcome& o) noexcept {
  if (o.close_code == 1008) return true;
  if (o.http_status != 0 && net::classify_status(o.http_status) == net::outcome::rejected) return true;
  if (o.error == error::subprotocol_mismatch || o.error == error::extension_mismatch ||
      o.error == error::invalid_url || o.error == error::unsupported_scheme ||
      o.error == error::pin_mismatch || o.error == error::proxy_auth_required ||
      o.error == error::proxy_denied || o.error == error::proxy_protocol_error)
    return true;
  if (o.error.category() == socks_category()) return o.error == condition::fatal;
  return is_tls_verification_failure(o.error);
}

error_code reconnect_cause(const attempt_outcome& out) noexcept {
  return out.error || !out.opened ? out.error : make_error_code(error::closed_by_server);
}

std::string_view cause_label(const error_code& cause) noexcept {
  namespace ae = boost::asio::error;
  if (cause == error::closed_by_server) return "cause=\"closed_by_server\"";
  if (cause == error::pong_timeout) return "cause=\"pong_timeout\"";
  if (cause == error::handshake_rejected) return "cause=\"handshake_rejected\"";
  if (cause == ae::connection_refused) return "cause=\"refused\"";
  if (cause == ae::connection_reset || cause == ae::eof || cause == ae::broken_pipe ||
      cause == boost::beast::websocket::error::closed)
    return "cause=\"reset\"";
  if (cause == error::connect_timeout || cause == error::handshake_timeout || cause == ae::timed_out)
    return "cause=\"timeout\"";
  if (is_tls_verification_failure(cause) || cause == error::pin_mismatch ||
      cause.category() == boost::asio::error::get_ssl_category())
    return "cause=\"tls\"";
  if (cause == error::proxy_auth_required || cause == error::proxy_denied || cause == error::proxy_failed ||
      cause == error::proxy_protocol_error || cause.category() == socks_category())
    return "cause=\"proxy\"";
  if (cause == ae::host_unreachable || cause == ae::network_unreachable || cause == ae::host_not_found ||
      cause == ae::host_not_found_try_again || cause == ae::network_down)
    return "cause=\"network\"";
  return "cause=\"other\"";
}

decision reconnect_fsm::next(const attempt_outcome& o, clock::time_point now) {
  decision d;
  if (o.opened && o.uptime >= policy_.stable_after) {
    // The connection proved itself: a new outage starts from the first delay.
    backoff_.reset();
    outage_start_.reset();
  } else if (o.opened && o.traffic) {
    // Short but healthy (the server answered: a rolling restart, not a crash loop): the
    // backoff decays instead of running on across outages; a connection accepted and
    // dropped with nothing back keeps it growing.
    backoff_.decay();
    outage_start_.reset();
  }
  if (!outage_start_) outage_start_ = now;

  const bool clean = !o.error && (o.close_code == 1000 || o.close_code == 0);
  if (!policy_.enabled) {
    d.error = clean ? error_code{} : o.error;
    return d;
  }
  if (o.close_code == 1000 && !o.error && !policy_.on_normal_close) return d;
  if (is_fatal(o) && !policy_.retry_fatal) {
    if (o.close_code == 1008)
      d.error = make_error_code(error::policy_violation);
    else
      d.error = o.error ? o.error : make_error_code(error::handshake_rejected);
    return d;
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - *outage_start_);
  auto delay = backoff_.next(elapsed);
  if (!delay) {
    d.error = make_error_code(error::retries_exhausted);
    return d;
  }
  if (o.retry_after) {
    const auto asked = std::chrono::milliseconds{std::min(*o.retry_after, policy_.max_retry_after)};
    delay = std::max(*delay, asked);
  }
  d.retry = true;
  d.delay = *delay;
  d.attempt = backoff_.attempts();
  return d;
}

}  // namespace tether::ws::detail
