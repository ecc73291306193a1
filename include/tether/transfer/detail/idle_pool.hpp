// tether/transfer/detail/idle_pool.hpp: which idle connections are kept for reuse, without I/O:
// bounded in all and per origin, each for at most the idle timeout, the most recently used one
// handed out first (the warmest, and the least likely to have been closed by the server).
// Tested by tables in tests/unit/transfer/pool.cpp; connection_pool.hpp holds the sockets.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::transfer::detail {

/// How many idle connections are kept, and for how long.
struct idle_limits {
  std::size_t max_idle = 8;         ///< in all (0: nothing is kept)
  std::size_t max_per_origin = 4;   ///< for one origin
  std::chrono::milliseconds idle_timeout{15'000};
};

template <class T>
class idle_pool {
 public:
  using clock = std::chrono::steady_clock;

  explicit idle_pool(idle_limits limits) : limits_(limits) {}

  /// Keeps `item` as idle for `origin` since `now`. Returns what has to go: expired items, and
  /// the oldest ones over a bound (`item` itself when nothing may be kept).
  std::vector<T> put(const std::string& origin, T item, clock::time_point now) {
    std::vector<T> out = expire(now);
    if (limits_.max_idle == 0 || limits_.max_per_origin == 0) {
      out.push_back(std::move(item));
      return out;
    }
    entries_.push_back({origin, std::move(item), now});
    std::size_t same = 0;
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) same += it->origin == origin;
    // Over a bound: the oldest of the origin, then the oldest of all.
    for (auto it = entries_.begin(); same > limits_.max_per_origin && it != entries_.end();) {
      if (it->origin == origin) {
        out.push_back(std::move(it->item));
        it = entries_.erase(it);
        --same;
      } else {
        ++it;
      }
    }
    while (entries_.size() > limits_.max_idle) {
      out.push_back(std::move(entries_.front().item));
      entries_.pop_front();
    }
    return out;
  }

  /// The most recently kept item for `origin` that has not been idle too long, if any;
  /// expired items (of every origin) go to `expired`.
  std::optional<T> take(const std::string& origin, clock::time_point now, std::vector<T>& expired) {
    for (auto& e : expire(now)) expired.push_back(std::move(e));
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
      if (it->origin != origin) continue;
      std::optional<T> got(std::move(it->item));
      entries_.erase(std::next(it).base());
      return got;
    }
    return std::nullopt;
  }

  /// Everything kept, for closing.
  std::vector<T> clear() {
    std::vector<T> out;
    for (auto& e : entries_) out.push_back(std::move(e.item));
    entries_.clear();
    return out;
  }

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct entry {
    std::string origin;
    T item;
    clock::time_point since;
  };

  std::vector<T> expire(clock::time_point now) {
    std::vector<T> out;
    while (!entries_.empty() && now - entries_.front().since >= limits_.idle_timeout) {
      out.push_back(std::move(entries_.front().item));
      entries_.pop_front();
    }
    return out;
  }

  idle_limits limits_;
  std::deque<entry> entries_;  ///< oldest first
};

}  // namespace tether::transfer::detail
