// tether/ws/impl/client_events.ipp: the event queue: messages and status events for the
// application, the reader's backpressure.
#pragma once

#include <tether/ws/detail/client_impl.hpp>

namespace tether::ws::detail {

// A message read by the reader. A waiting application gets it through its executor's
// dispatch: inline when that executor is running this thread (as a read's completion would
// be), so that its answer can be written in the same turn of the event loop.
inline void client_impl::deliver(event e) {
  auto lk = locked();
  if (!event_waiter) {
    events.push(std::move(e));
    return;
  }
  auto h = take_waiter();
  lk.unlock();
  complete_on_own(strand, std::move(h), error_code{}, std::move(e));
}

inline void client_impl::deliver_status(event e, delivery how) {
  auto lk = locked();
  if (!event_waiter) {
    events.push_status(std::move(e));
    return;
  }
  auto h = take_waiter();
  if (how == delivery::posted) return complete_soon(inner, strand, std::move(h), error_code{}, std::move(e));
  lk.unlock();
  complete_on_own(strand, std::move(h), error_code{}, std::move(e));
}

inline bool client_impl::queue_full() const {
  const auto lk = locked();
  return events.full() && !close_requested;
}

inline asio::awaitable<void> client_impl::wait_for_space(connection* c) {
  if (!queue_full()) co_return;
  if (c) c->reader_paused = true;
  for (;;) {
    {
      const auto lk = locked();
      space_waiting = events.must_wait() && !close_requested;
      if (!space_waiting) break;
    }
    co_await space_cv.wait();
  }
  if (c) c->reader_paused = false;
}

inline event_handler client_impl::take_waiter() {
  event_handler h(std::move(*event_waiter));
  event_waiter.reset();
  return h;
}

// From any thread.
inline void client_impl::next_event(event_handler h) {
  auto lk = locked();
  if (!events.empty()) {
    auto e = events.pop();
    ++app_progress;
    const bool wake = space_waiting && !events.must_wait();
    if (wake) space_waiting = false;
    lk.unlock();
    complete_soon(inner, strand, std::move(h), error_code{}, std::move(e));
    if (wake) asio::post(strand, [self = shared_from_this()] { self->space_cv.notify(); });
  } else if (finished) {
    complete_later(strand, std::move(h), make_error_code(error::client_closed), event{});
  } else if (event_waiter) {
    complete_later(strand, std::move(h), make_error_code(error::busy), event{});
  } else {
    event_waiter.emplace(std::move(h));
  }
}

}  // namespace tether::ws::detail
