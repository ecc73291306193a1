// tether/ws/detail/reconnect_fsm.hpp: the reconnection decision as a sans-io state machine:
// what happened to the last attempt in, what to do next out. No sockets, no clock of its own.
#pragma once

#include <tether/net/backoff.hpp>
#include <tether/net/error.hpp>
#include <tether/ws/options.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

#include <string_view>

namespace tether::ws::detail {

/// How a connection attempt (or an open connection) ended.
struct attempt_outcome {
  error_code error;                              ///< what failed; empty for a clean close
  unsigned http_status = 0;                      ///< non-101 handshake status, if any
  std::optional<std::chrono::seconds> retry_after;  ///< the server's Retry-After, if any
  std::uint16_t close_code = 0;                  ///< the peer's close code, if it sent one
  bool opened = false;                           ///< the handshake had succeeded
  bool traffic = false;                          ///< a message or a pong came back on it
  std::chrono::milliseconds uptime{0};           ///< how long it stayed open
};

/// What to do next.
struct decision {
  bool retry = false;
  std::chrono::milliseconds delay{0};  ///< wait this long, then connect (when retry)
  std::uint32_t attempt = 0;           ///< the number of this retry in the current outage
  error_code error;                    ///< when not retrying: how `run` ends (empty: cleanly)
};

class reconnect_fsm {
 public:
  using clock = std::chrono::steady_clock;

  explicit reconnect_fsm(reconnect_policy p)
      : policy_(p),
        backoff_(policy_.backoff, policy_.seed ? policy_.seed : fresh_seed()) {}

  /// A seed for the jitter that differs per call and per process: one draw from the system
  /// per process, then a counter mixed by splitmix64 (no system call per client).
  TETHER_DECL static std::uint32_t fresh_seed() noexcept;

  /// Feeds the outcome of the latest attempt at time `now`; returns the next action.
  TETHER_DECL decision next(const attempt_outcome& o, clock::time_point now);

  /// True when the outcome is one a retry cannot fix (under the policy's classification).
  TETHER_DECL static bool is_fatal(const attempt_outcome& o) noexcept;

  std::uint32_t attempts() const noexcept { return backoff_.attempts(); }
  /// The ceiling the next delay is drawn under.
  std::chrono::milliseconds ceiling() const noexcept { return backoff_.ceiling(); }

 private:
  reconnect_policy policy_;
  net::backoff backoff_;
  std::optional<clock::time_point> outage_start_;
};

/// What a reconnection after `out` is reported as caused by: its error, or for an open
/// connection the server closed normally, error::closed_by_server (never "Success").
TETHER_DECL error_code reconnect_cause(const attempt_outcome& out) noexcept;

/// The metrics label of a reconnection's cause (net::metric::ws_reconnects): one of a fixed
/// set, `cause="..."`.
TETHER_DECL std::string_view cause_label(const error_code& cause) noexcept;

}  // namespace tether::ws::detail
