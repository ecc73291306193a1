// tether/ws/impl/client_write.ipp: the outbox (its bounds and expiry) and its one writer.
#pragma once

#include <tether/ws/detail/client_impl.hpp>

namespace tether::ws::detail {

inline void client_impl::count_written(std::size_t messages, std::size_t bytes) {
  opts.metrics->count(net::metric::ws_messages_out, {}, messages);
  opts.metrics->count(net::metric::ws_bytes_out, {}, bytes);
  std::size_t depth = 0;
  {
    const auto lk = locked();
    depth = outbox.size();
  }
  opts.metrics->gauge(net::metric::ws_outbox_depth, {}, static_cast<double>(depth));
}

// From any thread. Sends are queued in the order of these calls.
inline void client_impl::send(message m, clock::duration ttl, send_handler h) {
  auto lk = locked();
  if (finished || close_requested)
    return complete_later(strand, std::move(h), error_code{asio::error::operation_aborted});
  const auto size = m.data.size();
  if (!outbox.admits(size)) return complete_later(strand, std::move(h), make_error_code(error::outbox_full));
  outgoing o{std::move(m), ttl > clock::duration::zero() ? clock::now() + ttl : clock::time_point{},
             std::move(h)};
  const auto expires = o.expires;
  outbox.push(std::move(o));
  const auto depth = outbox.size();
  ++app_progress;
  ring_writer(lk);
  if (lk) lk.unlock();
  // Outside the lock: the sink is the application's code.
  if (opts.metrics) opts.metrics->gauge(net::metric::ws_outbox_depth, {}, static_cast<double>(depth));
  if (expires != clock::time_point{}) {
    asio::post(strand, [self = shared_from_this(), expires] {
      if (self->expiry_timer.expiry() <= clock::now() || expires < self->expiry_timer.expiry())
        self->arm_expiry(expires);
    });
  }
}

inline void client_impl::arm_expiry(clock::time_point when) {
  expiry_timer.expires_at(when);
  expiry_timer.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->sweep_expired();
  });
}

// Completes every queued message whose time to live has passed, so senders hear of it
// promptly even during a long outage.
inline void client_impl::sweep_expired() {
  const auto lk = locked();
  const auto next = outbox.sweep(clock::now(), [this](outgoing o) {
    complete_later(strand, std::move(o.handler), make_error_code(error::expired));
  });
  if (next != clock::time_point::max()) arm_expiry(next);
}

inline void client_impl::fail_outbox(error_code ec) {
  const auto lk = locked();
  while (!outbox.empty()) complete_later(strand, outbox.pop().handler, ec);
}

// Waits until every byte written so far is on the socket (or the socket failed).
// Waits until the first `upto` bytes appended are on the socket (or the socket failed).
inline asio::awaitable<error_code> client_impl::sent_upto(transport& tr, std::uint64_t upto) {
  const auto start = [&tr, upto](auto h) { tr.when_sent(upto, std::move(h)); };
  auto [ec] = co_await asio::async_initiate<decltype(nothrow), void(error_code)>(start, nothrow);
  co_return ec;
}

inline asio::awaitable<error_code> client_impl::flush(transport& tr, bool whole_records) {
  const auto start = [&tr, whole_records](auto h) { tr.flush(std::move(h), whole_records); };
  auto [ec] = co_await asio::async_initiate<decltype(nothrow), void(error_code)>(start, nothrow);
  co_return ec;
}

// The one writer. Small messages queued together are framed synchronously into the
// transport's buffer and go out in one socket write; a message larger than
// write_coalesce_bytes is framed in pieces (compressed: Beast's asynchronous write, whose
// memory the transport bounds). Sends complete once their bytes are on the socket.
//
// The invariant of the two framing paths: a frame is appended only at a frame boundary of
// the outgoing stream (transport::can_append_frame), and while one of ours is open, Beast's
// bytes wait behind it; so frames from tether's framer and from Beast never interleave.
//
// Over TLS (uncompressed) a write of a record or more takes whole records only (write_extent)
// and the last frame's few bytes beyond wait for the next frames, which usually follow within
// a turn: its send completes with the write that takes them. Before the writer stops (nothing queued, a close,
// the connection's end) everything it appended is owed, so no byte waits for a frame that will
// not come.
inline asio::awaitable<void> client_impl::writer(connection& c) {
  auto& ws = c.ws;
  auto& tr = ws.next_layer();
  const auto coalesce = opts.write_coalesce_bytes;
  // Sends whose frames are appended and not yet wholly on the socket, oldest first.
  struct in_transit {
    std::uint64_t end;  // the stream position after the message's frame
    std::size_t bytes;
    send_handler handler;
  };
  // (Vectors kept across writes, so a write allocates nothing for them: over plain TCP every
  // write confirms all of it; over TLS the few sends not yet confirmed move to `unconfirmed`,
  // which then changes places with it, as a send's handler cannot be assigned to.)
  std::vector<in_transit> transit, unconfirmed;
  // Completes the sends whose frames are on the socket (every one, with `ec`, on a failure).
  // Only after a flush: its completion came through a post, a turn of its own, so the senders
  // can hear now, without one more post.
  auto confirm = [&](error_code ec) {
    std::size_t n = 0, bytes = 0;
    for (; n < transit.size() && (ec || transit[n].end <= tr.sent()); ++n) bytes += transit[n].bytes;
    if (n == 0) return;
    if (opts.metrics && !ec) count_written(n, bytes);
    unconfirmed.clear();
    for (std::size_t i = n; i < transit.size(); ++i) unconfirmed.push_back(std::move(transit[i]));
    for (std::size_t i = 0; i < n; ++i) complete_now(inner, strand, std::move(transit[i].handler), ec);
    transit.clear();
    transit.swap(unconfirmed);
  };
  while (!c.ended) {
    {
      auto lk = locked();
      if (outbox.empty() || close_requested) {
        lk.unlock();
        if (!transit.empty()) {
          // The bytes of the last frames that waited for more go now.
          const auto ec = co_await flush(tr);
          confirm(ec);
          if (ec) break;
          continue;
        }
        tr.drop_spare();  // nothing more to send: no memory kept for what comes back
        co_await asio::async_initiate<decltype(asio::deferred), void()>(
            [this, &c](auto h) {
              const auto lk2 = locked();
              if (c.ended || (!outbox.empty() && !close_requested))
                asio::post(strand, std::move(h));
              else
                writer_parked.emplace(std::move(h));
            },
            asio::deferred);
        continue;
      }
    }
    // While the application is still taking events and queueing answers, let it: its next
    // messages join this write. Until it waits for an event with none queued, has not
    // moved for a turn of the event loop, fills a write, or 64 turns passed.
    for (int turn = 0; turn < 64; ++turn) {
      std::uint64_t seen = 0;
      {
        const auto lk = locked();
        if (outbox.bytes() >= coalesce || (event_waiter && events.empty())) break;
        seen = app_progress;
      }
      co_await asio::post(strand, asio::deferred);
      if (c.ended || close_requested) break;
      const auto lk = locked();
      if (app_progress == seen) break;
    }
    if (c.ended || close_requested) continue;
    error_code ec;
    // The next message to write if it is at most `budget` bytes (expired ones are completed
    // on the way).
    auto take = [&](std::size_t budget) -> std::optional<outgoing> {
      const auto lk = locked();
      while (!outbox.empty()) {
        if (outbox.front().bytes() > budget) return std::nullopt;
        auto o = outbox.pop();
        if (decltype(outbox)::expired_now(o)) {
          complete_later(strand, std::move(o.handler), make_error_code(error::expired));
          continue;
        }
        ws.binary(o.msg.kind == message_kind::binary);
        return o;
      }
      return std::nullopt;
    };
    auto o = take(std::numeric_limits<std::size_t>::max());
    if (!o) continue;
    if (o->msg.data.size() > coalesce && !c.deflate && tr.can_append_frame()) {
      // A large uncompressed message: framed and masked here in one pass, a piece of
      // write_coalesce_bytes at a time, the next piece prepared while the socket takes the
      // one before (at most about two pieces in memory).
      c.writing_large = connection::large_write::ours;
      const auto& data = o->msg.data;
      tr.begin_frame(o->msg.kind == message_kind::binary, data.size());
      for (std::size_t off = 0; off < data.size() && !ec;) {
        const std::uint64_t before = tr.appended();
        const auto k = std::min(coalesce, data.size() - off);
        tr.append_payload(data.data() + off, k);
        off += k;
        ec = co_await sent_upto(tr, before);
      }
      c.writing_large = connection::large_write::none;
      c.control_cv.notify();  // a close waits for the frame to end
      transit.push_back(in_transit{tr.appended(), data.size(), std::move(o->handler)});
      tr.offer_spare(std::move(o->msg.data));  // every byte of it was copied (masked) already
    } else if (o->msg.data.size() > coalesce) {
      // A large compressed message: Beast's asynchronous write, whose memory the transport
      // bounds.
      c.writing_large = connection::large_write::beasts;
      auto [wec, n] = co_await ws.async_write(asio::buffer(o->msg.data), nothrow);
      c.writing_large = connection::large_write::none;
      c.control_cv.notify();  // a close waits for the frame to end
      ec = wec;
      transit.push_back(in_transit{tr.appended(), o->msg.data.size(), std::move(o->handler)});
    } else {
      // Small messages: framed synchronously into one socket write.
      tr.cork();
      std::size_t bytes = 0;
      // (Each message in its own optional: outgoing is never assigned to, see event_waiter.)
      for (auto next = std::move(o); next;) {
        // Uncompressed: the transport frames it in one pass; else Beast compresses it.
        if (!c.deflate && tr.can_append_frame())
          tr.append_frame(next->msg.kind == message_kind::binary, next->msg.data.data(), next->msg.data.size());
        else
          ws.write(asio::buffer(next->msg.data), ec);
        bytes += next->msg.data.size();
        transit.push_back(in_transit{tr.appended(), next->msg.data.size(), std::move(next->handler)});
        if (ec || bytes >= coalesce) break;
        next.reset();
        if (auto more = take(coalesce - bytes)) next.emplace(std::move(*more));
      }
    }
    // Even when the write went out whole at once, the flush completes through a post: that
    // turn of the event loop is when the application's next sends gather for the next write
    // (without it, a sending coroutine's messages go out one frame per write). Over TLS the
    // write takes whole records and the bytes beyond wait for that next write, which comes
    // right after this turn (or, with nothing queued by then, the flush before parking).
    // Whether more will come cannot be told here: the application is waiting for an event
    // when the writer runs, whether its next messages are a turn away or not; asking for it
    // (the gathering loop's condition) held nothing back and saved no write.
    const auto fec = co_await flush(tr, !c.deflate);
    if (!ec) ec = fec;
    confirm(ec);
    if (ec) {
      tr.close();
      break;
    }
  }
  if (!transit.empty()) {
    // The connection ended (its socket is closed) with frames not wholly sent: the flush
    // tells how they fared.
    const auto ec = co_await flush(tr);
    confirm(ec);
  }
  c.release();
}

}  // namespace tether::ws::detail
