// tether/net/backoff_policy.hpp: how retries are spaced, as plain data (the options of the ws
// client and the transfer manager hold one; the generator itself is in net/backoff.hpp).
#pragma once

#include <chrono>
#include <cstdint>

namespace tether::net {

/// How retries are spaced. Zero means "off" for the limits.
struct backoff_policy {
  /// The ceiling of the first delay; the ceiling doubles per attempt (times `multiplier`).
  std::chrono::milliseconds initial{500};
  /// No delay is longer than this.
  std::chrono::milliseconds max{30'000};
  /// Growth of the ceiling per attempt.
  double multiplier = 2.0;
  /// Every delay is at least this, so that full jitter never yields a tight loop.
  std::chrono::milliseconds min{50};
  /// Give up after this many attempts in a row (0: never).
  std::uint32_t max_attempts = 0;
  /// Give up once this much time has passed since the first failure in a row (0: never).
  std::chrono::milliseconds max_elapsed{0};
};

}  // namespace tether::net
