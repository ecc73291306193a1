#pragma once

#include <tether/net/retry.hpp>
#include <tether/ws/detail/reconnect_fsm.hpp>

#include <algorithm>

namespace tether::ws::detail {

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
