// tether/transfer/detail/retry_fsm.hpp: the retry decision of one call as a sans-io state
// machine: what the last attempt ended with in, what to do next out (the clock and the
// randomness injected). Tested by tables in tests/unit/transfer/decide.cpp.
#pragma once

#include <tether/net/backoff.hpp>
#include <tether/net/error.hpp>
#include <tether/net/retry.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace tether::transfer::detail {

/// What one attempt (one connection, after redirects) ended with.
struct attempt_end {
  error_code ec;
  unsigned status = 0;
  std::optional<std::chrono::seconds> retry_after;
  std::string message;
  bool progressed = false;  ///< new bytes moved (resets the retry budget)
  /// The failure is on this machine (the disk, the source file): another connection will not
  /// mend it, so the call ends (what is durable stays for a later call).
  bool local = false;
  bool complete = false;
  /// The connection still has unread response data: close it without TLS's goodbye, which
  /// would have to wait for that data first.
  bool drop = false;
  /// The last response was read to its end and the server keeps the connection open: it may
  /// carry the next request (the manager's pool keeps it).
  bool reusable = false;
};

/// The next step of the retry loop.
struct retry_step {
  enum kind_t {
    finish,    ///< the attempt completed: finalize
    wait,      ///< wait `delay`, then attempt again
    stop,      ///< the call ends with `outcome`, `error` and `message`
  } kind = stop;
  std::chrono::milliseconds delay{0};
  net::outcome outcome = net::outcome::failed;
  error_code error;
  std::string message;
  /// With stop: the server asked for more time than allowed; do not start before this
  /// moment (the transfer stays resumable).
  std::optional<std::chrono::system_clock::time_point> not_before;
};

/// Decides retries for one call: attempts in a row without progress are bounded by the
/// backoff policy (progress starts the count over), a server's Retry-After is honoured up to
/// `max_retry_after` (beyond it the call ends as retry_later with a start time), and no
/// attempt starts or waits past the deadline.
class retry_fsm {
 public:
  using clock = std::chrono::steady_clock;

  retry_fsm(net::backoff_policy policy, std::chrono::seconds max_retry_after, clock::time_point deadline,
            std::uint64_t seed)
      : backoff_(unlimited(policy), seed),
        max_in_row_(policy.max_attempts),
        max_retry_after_(max_retry_after),
        deadline_(deadline) {}

  /// Before each attempt: nothing to say, or a stop (the deadline has passed).
  TETHER_DECL std::optional<retry_step> before_attempt(clock::time_point now);

  /// After an attempt that ended as `end` at `now` (`system_now` dates a long Retry-After).
  /// `attempts` is the transfer's attempt count so far (for the message).
  TETHER_DECL retry_step next(const attempt_end& end, clock::time_point now,
                              std::chrono::system_clock::time_point system_now, std::uint32_t attempts);

 private:
  // The policy's max_attempts counts attempts in a row without progress, the first included;
  // the generator only spaces them.
  static net::backoff_policy unlimited(net::backoff_policy p) {
    p.max_attempts = 0;
    return p;
  }
  net::backoff backoff_;
  std::uint32_t max_in_row_ = 0;
  std::uint32_t failures_in_row_ = 0;
  std::chrono::seconds max_retry_after_;
  clock::time_point deadline_;
  std::optional<clock::time_point> first_failure_;
};

}  // namespace tether::transfer::detail
