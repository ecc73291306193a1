// tether/ws/impl/client_session.ipp: one open connection: the reader, the keepalive pinger, the
// wind-down.
#pragma once

#include <tether/ws/detail/client_impl.hpp>
#include <tether/ws/detail/session_rules.hpp>

namespace tether::ws::detail {

inline asio::awaitable<void> client_impl::pinger(connection& c) {
  const keepalive k{opts.ping_interval, opts.pong_timeout};
  while (!c.ended) {
    c.ping_timer.expires_after(k.interval);
    auto [tec] = co_await c.ping_timer.async_wait(nothrow);
    if (tec || c.ended || close_requested) continue;
    if (c.control_busy) continue;
    c.control_busy = true;
    const auto sent = clock::now();
    c.ping_sent = sent;
    const websocket::ping_data empty;
    auto [pec] = co_await c.ws.async_ping(empty, nothrow);
    c.control_busy = false;
    c.control_cv.notify();
    if (pec || c.ended || !k.checks_pong()) continue;
    c.ping_timer.expires_after(k.pong_timeout);
    auto [wec] = co_await c.ping_timer.async_wait(nothrow);
    if (wec || c.ended) continue;
    auto& tr = c.ws.next_layer();
    if (keepalive::peer_dead(tr.last_rx(), sent, c.reader_paused, tr.unread())) {
      log(net::log_level::warn, "tether.ws: no answer within pong_timeout; failing the connection");
      if (!c.fail_reason) c.fail_reason = make_error_code(error::pong_timeout);
      tr.close();
    }
  }
  c.release();
}

// Ends an open connection: its socket closed, the writer (which must see `ended` when it
// is rung) and the pinger and every other helper ended before `c` may go.
inline asio::awaitable<void> client_impl::wind_down(connection& c) {
  c.ended = true;
  c.ws.next_layer().close();
  c.stop_watching();
  ring_writer();
  co_await c.retire();
}

// Runs one open connection until it ends; returns how it ended.
inline asio::awaitable<attempt_outcome> client_impl::serve(connection& c) {
  auto self = shared_from_this();
  c.hold();
  asio::co_spawn(strand, writer(c), asio::detached);
  if (keepalive{opts.ping_interval, opts.pong_timeout}.pings()) {  // else there is nothing for it to do
    c.hold();
    asio::co_spawn(strand, pinger(c), asio::detached);
  }
  attempt_outcome out;
  out.opened = true;
  const auto opened = clock::now();
  beast::flat_buffer buf;
  auto& tr = c.ws.next_layer();
  int since_read = 0;  // messages delivered since the last asynchronous read
  for (;;) {
    buf.clear();
    // A message that has wholly arrived is read synchronously: no operation, no post.
    // Not while Beast's asynchronous write is between two pieces of a frame (an answer to
    // a ping must not land inside it) or a close handshake reads. While tether's own framer
    // writes a large message it may: Beast's bytes then wait behind that frame (transport).
    const bool may_sync = c.writing_large != connection::large_write::beasts && !c.close_pending && !close_requested;
    if (may_sync && (tr.can_fill() || (!c.deflate && tr.can_top_up(opts.max_message_size)))) {
      // Idle, or only part of an ordinary message here: wait for the peer's next bytes
      // without Beast (see transport::fill). A failure is the next read's to report, after
      // whatever arrived before it.
      since_read = 0;
      co_await asio::async_initiate<decltype(nothrow), void(error_code)>([&tr](auto h) { tr.fill(std::move(h)); },
                                                                        nothrow);
      continue;
    }
    // An ordinary message that arrived since the last fill goes from the bytes read straight
    // into the application's string: whole (transport::take_whole), or a large binary one
    // whose rest is read from the socket into it (begin_large). Anything else is Beast's.
    std::string data;
    bool text = false;
    error_code ec;
    bool sync = false;
    const bool ours = may_sync && !c.deflate;
    if (ours && tr.take_whole(data, text, opts.max_message_size)) {
      // whole in memory: nothing to wait for
    } else if (ours && tr.begin_large(data, opts.max_message_size)) {
      since_read = 0;
      while (!ec && tr.large_left() > 0) {
        auto [lec] = co_await asio::async_initiate<decltype(nothrow), void(error_code)>(
            [&tr, &data](auto h) { tr.read_large(data, std::move(h)); }, nothrow);
        ec = lec;
      }
    } else {
      sync = may_sync && tr.messages().ready() > 0;
      if (sync) {
        c.ws.read(buf, ec);
      } else {
        since_read = 0;
        auto [aec, n] = co_await c.ws.async_read(buf, nothrow);
        ec = aec;
      }
      if (!ec) {
        tr.messages().take();
        const auto d = buf.cdata();
        data.assign(static_cast<const char*>(d.data()), d.size());
        text = c.ws.got_text();
        // A message larger than a read chunk grew Beast's buffer to its size: freed now, so
        // that a connection does not keep the largest message it ever received (up to
        // max_message_size) for the rest of its life.
        if (buf.capacity() > opts.read_buffer_size) {
          buf.clear();
          buf.shrink_to_fit();
        }
      }
    }
    if (ec) {
      if (sync) {
        // Beast gathered a close frame for the failure: send it before the socket closes.
        c.arm(opts.close_timeout, error::close_timeout);
        co_await flush(tr);
        c.disarm();
      }
      // Beast may complete the pending read before our close handshake finishes; its
      // outcome decides how the connection ended.
      while (c.close_pending) co_await c.control_cv.wait();
      session_facts f;
      f.peer_closed = ec == websocket::error::closed;
      f.peer_code = c.ws.reason().code;
      f.read_error = ec;
      f.failure_code = close_code_for(ec);
      f.fail_reason = c.fail_reason;
      f.close_requested = close_requested;
      f.our_code = closing.code;
      const auto end = judge_session_end(f);
      out.error = end.error;
      out.close_code = end.close_code;
      break;
    }
    c.traffic = true;
    if (queue_full()) co_await wait_for_space(&c);
    if (opts.metrics) {
      opts.metrics->count(net::metric::ws_messages_in, {}, 1);
      opts.metrics->count(net::metric::ws_bytes_in, {}, data.size());
    }
    deliver(message{text ? message_kind::text : message_kind::binary, std::move(data)});
    // The last read brought several messages, drained the socket, and none is left whole in
    // memory: whatever the application did with them (its answers, posted) goes first, one
    // turn of the event loop on the application's executor (the strand stays free for the
    // writer), so that the answers leave in one write before the next read. After a single
    // message there is nothing to gather, and the turn is not taken: the next read still finds
    // the socket empty with a system call (Asio tries a read at once unless the last one found
    // the end of the stream), but moving that call behind the answer did not shorten a round
    // trip (16 B, one in flight: p50 49.8 against 49.3 us), and the post costs every message.
    ++since_read;
    if (since_read > 1 && tr.drained() && tr.messages().ready() == 0)
      co_await asio::post(inner, asio::deferred);
  }
  co_await wind_down(c);
  out.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - opened);
  out.traffic = c.traffic;
  co_return out;
}

}  // namespace tether::ws::detail
