// tether/ws/detail/queues.hpp: the client's two queues as rules without I/O: the event queue
// (messages wait for room, status events never do and may use a fixed reserve) and the outbox
// (bounded in messages and bytes, entries with a time to live). The client keeps them under
// its mutex and does the completing; these decide what goes in, what comes out and when.
// Tested by tables in tests/unit/ws/queues.cpp.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <utility>

namespace tether::ws::detail {

/// Events for the application, oldest first.
///
/// Messages are never discarded: when `size() >= limit` the queue is full and the reader stops
/// reading the socket (backpressure) until the application has taken it below `resume_below()`
/// (half the limit, so that the reader is not woken for every event taken). Status events
/// (connected, disconnected, reconnecting, pong) never wait, so that an application that only
/// sends cannot stall reconnection: they may go `status_reserve` past the limit, and beyond that
/// the oldest status event gives way (the client's state() always tells the current state).
template <class Event, class IsMessage>
class event_queue {
 public:
  static constexpr std::size_t status_reserve = 32;

  /// `limit` 0 counts as 1.
  explicit event_queue(std::size_t limit, IsMessage is_message = {})
      : limit_(std::max<std::size_t>(limit, 1)), is_message_(std::move(is_message)) {}

  bool empty() const noexcept { return q_.empty(); }
  std::size_t size() const noexcept { return q_.size(); }
  bool full() const noexcept { return q_.size() >= limit_; }
  std::size_t resume_below() const noexcept { return limit_ / 2 + 1; }
  /// True while a paused reader must go on waiting.
  bool must_wait() const noexcept { return q_.size() >= resume_below(); }

  /// A message (the reader has waited for room first, see full()).
  void push(Event e) { q_.push_back(std::move(e)); }
  /// A status event: never waits; at limit + reserve, the oldest status event is dropped.
  /// Returns true when one was.
  bool push_status(Event e) {
    bool dropped = false;
    if (q_.size() >= limit_ + status_reserve) {
      auto it = std::find_if(q_.begin(), q_.end(), [this](const Event& x) { return !is_message_(x); });
      if (it != q_.end()) {
        q_.erase(it);
        dropped = true;
      }
    }
    q_.push_back(std::move(e));
    return dropped;
  }
  Event pop() {
    Event e = std::move(q_.front());
    q_.pop_front();
    return e;
  }

 private:
  std::deque<Event> q_;
  std::size_t limit_;
  IsMessage is_message_;
};

/// Messages waiting to be written, oldest first, bounded by `max_messages` and `max_bytes`.
/// `Item` has `bytes()` and `expires` (a time point; the default-constructed one means never).
///
/// Items are moved in and out, never assigned to or erased from the middle (a send's
/// completion handler in Boost 1.81 cannot be move-assigned): an expiry sweep rebuilds the
/// queue with the survivors in their order.
template <class Item, class Clock = std::chrono::steady_clock>
class outbox_queue {
 public:
  using time_point = typename Clock::time_point;

  outbox_queue(std::size_t max_messages, std::size_t max_bytes) : max_messages_(max_messages), max_bytes_(max_bytes) {}

  bool empty() const noexcept { return q_.empty(); }
  std::size_t size() const noexcept { return q_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  const Item& front() const { return q_.front(); }

  /// Whether one more message of `n` bytes fits both bounds.
  bool admits(std::size_t n) const noexcept {
    return q_.size() < max_messages_ && n <= max_bytes_ && bytes_ <= max_bytes_ - n;
  }
  /// Queues an item the caller has checked with admits().
  void push(Item i) {
    bytes_ += i.bytes();
    q_.push_back(std::move(i));
  }
  Item pop() {
    Item i = std::move(q_.front());
    q_.pop_front();
    bytes_ -= i.bytes();
    return i;
  }
  static bool expired(const Item& i, time_point now) noexcept {
    return i.expires != time_point{} && i.expires <= now;
  }
  /// expired(i, now) with the clock read only for an item that can expire (the writer asks
  /// for every message it takes).
  static bool expired_now(const Item& i) noexcept { return i.expires != time_point{} && expired(i, Clock::now()); }
  /// Hands every item expired at `now` to `gone` (oldest first); the others keep their order.
  /// Returns the earliest expiry still queued, time_point::max() when none.
  template <class Gone>
  time_point sweep(time_point now, Gone&& gone) {
    auto next = time_point::max();
    std::deque<Item> keep;
    std::size_t kept_bytes = 0;
    while (!q_.empty()) {
      Item i = std::move(q_.front());
      q_.pop_front();
      if (expired(i, now)) {
        gone(std::move(i));
        continue;
      }
      if (i.expires != time_point{}) next = std::min(next, i.expires);
      kept_bytes += i.bytes();
      keep.push_back(std::move(i));
    }
    q_.swap(keep);
    bytes_ = kept_bytes;
    return next;
  }

 private:
  std::deque<Item> q_;
  std::size_t bytes_ = 0;
  std::size_t max_messages_, max_bytes_;
};

}  // namespace tether::ws::detail
