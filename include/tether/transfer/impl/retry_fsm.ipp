// tether/transfer/impl/retry_fsm.ipp: the retry state machine of one transfer call (no I/O).
#pragma once

#include <tether/transfer/detail/retry_fsm.hpp>

namespace tether::transfer::detail {

namespace {
retry_step deadline_passed() {
  retry_step s;
  s.kind = retry_step::stop;
  s.outcome = net::outcome::failed;
  s.error = make_error_code(error::deadline_exceeded);
  s.message = "the transfer did not finish within its deadline";
  return s;
}
}  // namespace

std::optional<retry_step> retry_fsm::before_attempt(clock::time_point now) {
  if (now >= deadline_) return deadline_passed();
  if (!first_failure_) first_failure_ = now;
  return std::nullopt;
}

retry_step retry_fsm::next(const attempt_end& end, clock::time_point now,
                           std::chrono::system_clock::time_point system_now, std::uint32_t attempts) {
  retry_step s;
  if (end.complete) {
    s.kind = retry_step::finish;
    return s;
  }
  s.error = end.ec;
  s.message = end.message;
  // A range mismatch has already discarded what could not continue: the next attempt starts over.
  const auto o = end.local                        ? net::outcome::failed
                 : end.ec == error::range_mismatch ? net::outcome::retry_later
                                                   : net::classify_error(end.ec);
  if (o != net::outcome::retry_later) {
    s.outcome = o;
    return s;
  }
  if (end.progressed || !first_failure_) {
    backoff_.reset();
    first_failure_ = now;
    failures_in_row_ = 0;
  }
  if (!end.progressed) ++failures_in_row_;
  auto delay = max_in_row_ != 0 && failures_in_row_ >= max_in_row_
                   ? std::nullopt
                   : backoff_.next(std::chrono::duration_cast<std::chrono::milliseconds>(now - *first_failure_));
  // Only a server that asked for time (429, or a Retry-After) leaves the transfer waiting for
  // a later call; a 500 that persists is a failure with its status.
  const bool server_busy = end.status == 429 || end.retry_after.has_value();
  if (!delay) {
    s.outcome = server_busy ? net::outcome::retry_later : net::outcome::failed;
    s.message = "gave up after " + std::to_string(attempts) + " attempts: " + end.message;
    if (!server_busy && end.ec.category() != tether::error_category())
      s.error = make_error_code(error::retries_exhausted);
    return s;
  }
  if (end.retry_after) {
    if (*end.retry_after > max_retry_after_) {
      s.outcome = net::outcome::retry_later;
      s.not_before = system_now + *end.retry_after;
      return s;
    }
    delay = std::max<std::chrono::milliseconds>(*delay, *end.retry_after);
  }
  if (now + *delay >= deadline_) return deadline_passed();
  s.kind = retry_step::wait;
  s.delay = *delay;
  return s;
}

}  // namespace tether::transfer::detail
