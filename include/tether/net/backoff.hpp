// tether/net/backoff.hpp: exponential backoff with full jitter, a cap and optional limits,
// with seedable randomness so that tests are deterministic.
#pragma once

#include <tether/config.hpp>
#include <tether/net/backoff_policy.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

namespace tether::net {

/// The jitter's random bits: splitmix64 (Steele, Lea, Flood 2014), a UniformRandomBitGenerator
/// whose state is one word. Jitter only spreads clients apart; it needs no more than this,
/// and seeding it costs nothing (std::mt19937_64's 312-word state cost every client ~7,000
/// instructions to seed).
class jitter_engine {
 public:
  using result_type = std::uint64_t;
  explicit jitter_engine(std::uint64_t seed) noexcept : state_(seed) {}
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }
  result_type operator()() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

/// The state of one run of retries. Full jitter (delay uniform in [min, ceiling]) on every
/// attempt. `reset()` starts over. Not thread-safe: owned by one state machine.
class backoff {
 public:
  explicit backoff(backoff_policy p = {}, std::uint64_t seed = std::random_device{}())
      : policy_(p), rng_(seed) {}

  /// The delay before the next attempt, or nothing if the policy has given up. `elapsed` is
  /// the time since the first failure of this run (for `max_elapsed`).
  TETHER_DECL std::optional<std::chrono::milliseconds> next(
      std::chrono::milliseconds elapsed = std::chrono::milliseconds{0});

  /// The ceiling the next delay is drawn under (for tests and reports).
  TETHER_DECL std::chrono::milliseconds ceiling() const noexcept;

  void reset() noexcept { attempts_ = 0; }
  /// Halves the attempt count: the next ceilings start lower, but not from the first.
  void decay() noexcept { attempts_ /= 2; }
  std::uint32_t attempts() const noexcept { return attempts_; }
  const backoff_policy& policy() const noexcept { return policy_; }

 private:
  backoff_policy policy_;
  jitter_engine rng_;
  std::uint32_t attempts_ = 0;
};

}  // namespace tether::net
