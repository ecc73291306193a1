// tether/transfer/detail/pacing.hpp: bandwidth pacing and the rate estimate as functions of
// `now` (sans-io: the caller owns the clock and the waiting).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace tether::transfer::detail {

using steady = std::chrono::steady_clock;

/// Paces bytes to a rate: each reservation of n bytes moves the earliest next send by n/rate.
class rate_limiter {
 public:
  /// A burst this long is allowed, so that pacing does not stall on timer granularity.
  static constexpr std::chrono::milliseconds burst{100};

  /// When the caller may go on after moving `n` bytes at `rate` bytes/s (0: no limit, `now`).
  steady::time_point reserve(std::uint64_t rate, std::uint64_t n, steady::time_point now) {
    if (rate == 0) return now;
    next_ = std::max(next_, now - burst);
    next_ += std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(double(n) / double(rate)));
    return next_;
  }

 private:
  steady::time_point next_{};
};

/// The tighter of two limits in bytes/s, where 0 means none.
constexpr std::uint64_t tighter_limit(std::uint64_t a, std::uint64_t b) noexcept {
  return a && b ? std::min(a, b) : (a ? a : b);
}

/// A smoothed transfer rate: a sample every `period` at the least, blended 70/30 into the
/// estimate, so that one burst or one stall does not swing the ETA.
class rate_estimate {
 public:
  static constexpr std::chrono::milliseconds period{500};

  /// `done`: bytes so far (it may go back when a transfer starts over).
  void update(std::uint64_t done, steady::time_point now) {
    if (!started_) {
      started_ = true;
      at_ = now;
      bytes_at_ = done;
      return;
    }
    if (now - at_ < period) return;
    const double secs = std::chrono::duration<double>(now - at_).count();
    const double inst = done >= bytes_at_ ? double(done - bytes_at_) / secs : 0.0;
    rate_ = rate_ == 0 ? inst : 0.7 * rate_ + 0.3 * inst;
    at_ = now;
    bytes_at_ = done;
  }
  /// Bytes per second; 0 until a first period has passed.
  double rate() const noexcept { return rate_; }
  /// Time left for `total - done` at the current rate; nothing while the rate is unknown.
  std::optional<std::chrono::seconds> eta(std::uint64_t done, std::optional<std::uint64_t> total) const {
    if (!total || rate_ <= 0 || *total < done) return std::nullopt;
    return std::chrono::seconds{static_cast<std::int64_t>(double(*total - done) / rate_)};
  }

 private:
  bool started_ = false;
  steady::time_point at_{};
  std::uint64_t bytes_at_ = 0;
  double rate_ = 0;
};

}  // namespace tether::transfer::detail
