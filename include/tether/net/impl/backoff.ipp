#pragma once

#include <tether/net/backoff.hpp>

#include <algorithm>
#include <cmath>

namespace tether::net {

std::chrono::milliseconds backoff::ceiling() const noexcept {
  const double base = static_cast<double>(std::max<std::int64_t>(policy_.initial.count(), 1));
  const double cap = static_cast<double>(std::max(policy_.max, policy_.min).count());
  const double mult = std::max(policy_.multiplier, 1.0);
  // Stop multiplying once the cap is reached so the value cannot overflow.
  double c = base;
  for (std::uint32_t i = 0; i < attempts_ && c < cap; ++i) c *= mult;
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::min(c, cap))};
}

std::optional<std::chrono::milliseconds> backoff::next(std::chrono::milliseconds elapsed) {
  if (policy_.max_attempts != 0 && attempts_ >= policy_.max_attempts) return std::nullopt;
  if (policy_.max_elapsed.count() > 0 && elapsed >= policy_.max_elapsed) return std::nullopt;
  const auto hi = std::max(ceiling(), policy_.min);
  ++attempts_;
  std::uniform_int_distribution<std::int64_t> dist(policy_.min.count(), hi.count());
  return std::chrono::milliseconds{dist(rng_)};
}

}  // namespace tether::net
