#pragma once

#include <tether/net/retry.hpp>
#include <tether/net/detail/proxy_tunnel.hpp>
#include <tether/net/detail/tls_context.hpp>
#include <tether/net/detail/tls_relay.hpp>
#include <tether/net/url.hpp>
#include <tether/ws/client.hpp>
#include <tether/ws/detail/reconnect_fsm.hpp>
#include <tether/ws/detail/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <functional>


#if defined(__linux__)
#include <boost/asio/generic/raw_protocol.hpp>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#endif

#include <algorithm>
#include <exception>
#include <array>
#include <cstring>
#include <atomic>
#include <deque>
#include <mutex>

namespace tether::ws {

const char* to_string(connection_state s) noexcept {
  switch (s) {
    case connection_state::idle: return "idle";
    case connection_state::connecting: return "connecting";
    case connection_state::open: return "open";
    case connection_state::reconnecting: return "reconnecting";
    case connection_state::closing: return "closing";
    case connection_state::closed: return "closed";
  }
  return "unknown";
}

namespace detail {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

/// A condition variable for coroutines on one strand: wait() suspends until notify(), which
/// wakes every waiter. The timer never expires; waiting must not re-arm it (expires_at would
/// cancel the other waiters).
class async_cv {
 public:
  explicit async_cv(const asio::any_io_executor& ex) : timer_(ex, clock::time_point::max()) {}
  asio::awaitable<void> wait() { co_await timer_.async_wait(nothrow); }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

/// Map a read error to the close code the client sent for it (RFC 6455 §7.4.1).
inline std::uint16_t close_code_for(const error_code& ec) {
  if (ec == websocket::error::message_too_big) return 1009;
  if (ec == websocket::error::bad_frame_payload) return 1007;
  if (ec == websocket::condition::protocol_violation) return 1002;
  return 1006;
}

struct connection {
  connection(asio::any_io_executor ex, asio::ssl::context* tls, const options& o)
      : ws(ex, tls, o.read_buffer_size, o.write_coalesce_bytes), watchdog(ex), ping_timer(ex), control_cv(ex), done_cv(ex) {}

  websocket::stream<transport> ws;
  asio::steady_timer watchdog;
  asio::steady_timer ping_timer;
  async_cv control_cv;  // ping and close may not overlap (Beast's rule)
  async_cv done_cv;     // every helper has ended
  bool control_busy = false;
  bool open = false;
  bool ended = false;
  bool reader_paused = false;
  bool async_writing = false;   // the writer is in Beast's asynchronous write (a large message)
  bool deflate = false;         // permessage-deflate was negotiated
  bool close_pending = false;   // close_connection() is running
  bool traffic = false;         // a message or a pong came back
  // Coroutines that use this connection and must end before it does: the writer, the
  // pinger, a close handshake, the application's pings (see hold/release).
  int helpers = 0;
  void hold() noexcept { ++helpers; }
  void release() {
    if (--helpers == 0) done_cv.notify();
  }
  /// Ends the connection's life: wakes every helper so it sees `ended`, then waits for them.
  asio::awaitable<void> retire() {
    ended = true;
    control_cv.notify();
    ping_timer.cancel();
    while (helpers > 0) co_await done_cv.wait();
  }
  error_code fail_reason;  // set when we fail the connection on purpose (pong timeout...)
  clock::time_point ping_sent{};

  // Watchdog: close the socket if a phase does not finish by `d`, and remember why.
  void arm(std::chrono::milliseconds d, error e) {
    watchdog.expires_after(d);
    watchdog.async_wait([this, e](error_code ec) {
      if (ec) return;
      if (!fail_reason) fail_reason = make_error_code(e);
      ws.next_layer().close();
    });
  }
  void disarm() { watchdog.cancel(); }
};

struct outgoing {
  message msg;
  clock::time_point expires;  // time_point{} = never
  void_handler handler;
};

/// A strand over the application's executor. When that is a plain io_context executor the
/// strand wraps the concrete type, so that every operation on the strand goes through one type
/// erasure (any_io_executor), not two.
inline asio::any_io_executor strand_over(const asio::any_io_executor& ex) {
  if (const auto* io = ex.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
  return asio::make_strand(ex);
}

template <class Handler, class... Args>
void complete_later(const asio::any_io_executor& fallback, Handler h, Args... args) {
  // Never inline: the initiating call must return first. Posting through `fallback` and then
  // dispatching to the handler's own executor keeps the caller's executor. (Not asio::append:
  // in Boost 1.81 it hands any_completion_handler on as an lvalue, which that type's
  // unconstrained converting constructor wraps in itself without end.)
  if (!h) return;
  auto ex = asio::get_associated_executor(h, fallback);
  asio::post(fallback, [h = std::move(h), ex, t = std::make_tuple(std::move(args)...)]() mutable {
    asio::dispatch(ex, [h = std::move(h), t = std::move(t)]() mutable {
      std::apply([&h](auto&&... a) { std::move(h)(std::move(a)...); }, std::move(t));
    });
  });
}

/// The hot paths' completion: posted to the application's executor `inner` (no strand queue), then
/// dispatched to the handler's executor (`fallback`, the strand, when it has none): inline
/// when that executor is the one running. Never inline: the initiating call must return first.
template <class Handler, class... Args>
void complete_soon(const asio::any_io_executor& inner, const asio::any_io_executor& fallback, Handler h,
                   Args... args) {
  auto ex = asio::get_associated_executor(h, fallback);
  asio::post(inner, [h = std::move(h), ex, t = std::make_tuple(std::move(args)...)]() mutable {
    asio::dispatch(ex, [h = std::move(h), t = std::move(t)]() mutable {
      std::apply([&h](auto&&... a) { std::move(h)(std::move(a)...); }, std::move(t));
    });
  });
}

/// Completes a batch of send handlers with one post; each then runs on its own executor
/// (inline when that is the one running).
inline void complete_all(const asio::any_io_executor& inner, const asio::any_io_executor& fallback,
                         std::vector<void_handler> hs, error_code ec) {
  if (hs.empty()) return;
  asio::post(inner, [fallback, hs = std::move(hs), ec]() mutable {
    for (auto& h : hs) {
      if (!h) continue;
      auto ex = asio::get_associated_executor(h, fallback);
      asio::dispatch(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
    }
  });
}

struct client_impl : std::enable_shared_from_this<client_impl> {
  client_impl(const asio::any_io_executor& ex, options o)
      : inner(ex),
        strand(strand_over(ex)),
        opts(std::move(o)),
        space_cv(strand),
        expiry_timer(strand),
        backoff_timer(strand) {}

  asio::any_io_executor inner;   // the application's executor
  asio::any_io_executor strand;  // the connection's state lives here
  options opts;
  std::atomic<connection_state> state{connection_state::idle};
  std::atomic<std::int64_t> rtt_us{-1};
  /// Test seam (see client_access): when set, replaces DNS and TCP connect by handing the
  /// transport an already connected socket (e.g. one end of an in-memory socketpair).
  std::function<error_code(tcp::socket&)> connector;

  // The application's side (events taken, messages queued) is served under `mu` from any
  // thread, without a trip through the strand: events, event_waiter, outbox, outbox_bytes,
  // app_progress, the waiting flags, and the writes of finished and close_requested. The
  // strand's code reads those two flags freely (only it writes them) and takes `mu` for the rest.
  mutable std::mutex mu;
  std::unique_lock<std::mutex> locked() const { return std::unique_lock<std::mutex>(mu); }

  // Events for the application.
  std::deque<event> events;
  // Boost 1.81's any_completion_handler move-assignment recurses without end (it converts
  // from an lvalue); handlers are therefore only ever move-constructed: optional + emplace.
  std::optional<event_handler> event_waiter;
  async_cv space_cv;
  bool finished = false;

  // Outbox.
  std::uint64_t app_progress = 0;  // events taken + messages queued: the application is busy
  std::deque<outgoing> outbox;
  std::size_t outbox_bytes = 0;
  // The writer's doorbell: its parked continuation (under mu). Ringing dispatches it to the
  // strand: when the strand is idle and this thread runs its executor, the writer starts
  // writing at once, inside the send call (a timer's cancel would take three turns of the
  // event loop). Never called with mu held.
  std::optional<asio::any_completion_handler<void()>> writer_parked;
  void ring_writer(std::unique_lock<std::mutex>& lk) {
    if (!writer_parked) return;
    asio::any_completion_handler<void()> h(std::move(*writer_parked));
    writer_parked.reset();
    lk.unlock();
    asio::dispatch(strand, [h = std::move(h)]() mutable { std::move(h)(); });
  }
  void ring_writer() {
    auto lk = locked();
    ring_writer(lk);
  }
  asio::steady_timer expiry_timer;

  // Life.
  bool run_started = false;
  bool close_requested = false;
  close_reason closing;
  std::vector<void_handler> close_waiters;
  asio::steady_timer backoff_timer;
  connection* conn = nullptr;
  std::shared_ptr<asio::ssl::context> tls_ctx;

  void log(net::log_level l, const std::string& line) const { opts.log(l, line); }

  // ---- network changes (Linux netlink) ----------------------------------------------------
#if defined(__linux__)
  std::unique_ptr<asio::generic::raw_protocol::socket> netlink;
  std::array<nlmsghdr, 8192 / sizeof(nlmsghdr)> netlink_buf{};  // aligned for the headers

  void watch_network() {
    const asio::generic::raw_protocol proto(AF_NETLINK, NETLINK_ROUTE);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    error_code ec;
    auto sock = std::make_unique<asio::generic::raw_protocol::socket>(strand);
    sock->open(proto, ec);
    if (!ec) sock->bind(asio::generic::raw_protocol::endpoint(&sa, sizeof sa), ec);
    if (ec) {
      log(net::log_level::warn, "tether.ws: cannot watch the network (netlink): " + ec.message());
      return;
    }
    netlink = std::move(sock);
    read_netlink();
  }

  void read_netlink() {
    netlink->async_receive(asio::buffer(netlink_buf), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec || self->finished) return;
      bool up = false;
      // Walk the messages by their aligned lengths (NLMSG_NEXT's casts trip -Wcast-align).
      std::size_t off = 0;
      const auto* base = reinterpret_cast<const unsigned char*>(self->netlink_buf.data());
      while (off + sizeof(nlmsghdr) <= n) {
        nlmsghdr h;
        std::memcpy(&h, base + off, sizeof h);
        if (h.nlmsg_len < sizeof(nlmsghdr) || off + h.nlmsg_len > n) break;
        up = up || h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_NEWADDR || h.nlmsg_type == RTM_NEWROUTE;
        off += NLMSG_ALIGN(h.nlmsg_len);
      }
      if (up && self->state == connection_state::reconnecting) {
        self->log(net::log_level::info, "tether.ws: network changed; reconnecting now");
        self->network_changed = true;
        self->backoff_timer.cancel();
      }
      self->read_netlink();
    });
  }
  void stop_watching() {
    if (netlink) {
      error_code ignored;
      netlink->close(ignored);
    }
  }
#else
  void watch_network() {}
  void stop_watching() {}
#endif
  bool network_changed = false;

  // ---- events -----------------------------------------------------------------------------
  // A message read by the reader. A waiting application gets it through its executor's
  // dispatch: inline when that executor is running this thread (as a read's completion would
  // be), so that its answer can be written in the same turn of the event loop.
  void deliver(event e) {
    auto lk = locked();
    if (!event_waiter) {
      events.push_back(std::move(e));
      return;
    }
    auto h = take_waiter();
    lk.unlock();
    auto ex = asio::get_associated_executor(h, strand);
    asio::dispatch(ex, [h = std::move(h), e = std::move(e)]() mutable { std::move(h)(error_code{}, std::move(e)); });
  }
  void deliver_locked(event e) {
    if (event_waiter) {
      auto h = take_waiter();
      complete_soon(inner, strand, std::move(h), error_code{}, std::move(e));
    } else {
      events.push_back(std::move(e));
    }
  }

  // Status events (connected, disconnected, reconnecting, pong) never wait: an application
  // that only sends must not stall reconnection. They may exceed the limit by a fixed
  // reserve; beyond it the oldest status event gives way (state() always tells the current
  // state). Messages are never discarded: the reader waits instead (backpressure).
  static constexpr std::size_t status_reserve = 32;
  void deliver_status(event e) {
    const auto lk = locked();
    const auto limit = std::max<std::size_t>(opts.event_queue_limit, 1) + status_reserve;
    if (!event_waiter && events.size() >= limit) {
      auto it = std::find_if(events.begin(), events.end(),
                             [](const event& x) { return !std::holds_alternative<message>(x); });
      if (it != events.end()) events.erase(it);
    }
    deliver_locked(std::move(e));
  }

  bool queue_full() const {
    const auto lk = locked();
    return events.size() >= std::max<std::size_t>(opts.event_queue_limit, 1) && !close_requested;
  }

  // Waits while the event queue is full (the reader stops reading the socket meanwhile), and
  // then until the application has taken half of it, so that the reader is not woken for
  // every event taken. Events are delivered synchronously with deliver(): they are never
  // passed into a coroutine call, since GCC 12 can copy a class prvalue argument of a
  // coroutine bitwise.
  bool space_waiting = false;
  std::size_t resume_below() const noexcept { return std::max<std::size_t>(opts.event_queue_limit, 1) / 2 + 1; }
  asio::awaitable<void> wait_for_space(connection* c = nullptr) {
    if (!queue_full()) co_return;
    if (c) c->reader_paused = true;
    for (;;) {
      {
        const auto lk = locked();
        space_waiting = events.size() >= resume_below() && !close_requested;
        if (!space_waiting) break;
      }
      co_await space_cv.wait();
    }
    if (c) c->reader_paused = false;
  }

  event_handler take_waiter() {
    event_handler h(std::move(*event_waiter));
    event_waiter.reset();
    return h;
  }

  // From any thread.
  void next_event(event_handler h) {
    auto lk = locked();
    if (!events.empty()) {
      auto e = std::move(events.front());
      events.pop_front();
      ++app_progress;
      const bool wake = space_waiting && events.size() < resume_below();
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

  // ---- outbox -----------------------------------------------------------------------------
  void count_written(std::size_t messages, std::size_t bytes) {
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
  void send(message m, clock::duration ttl, void_handler h) {
    auto lk = locked();
    if (finished || close_requested)
      return complete_later(strand, std::move(h), error_code{asio::error::operation_aborted});
    const auto size = m.data.size();
    if (outbox.size() >= opts.outbox_max_messages || outbox_bytes + size > opts.outbox_max_bytes)
      return complete_later(strand, std::move(h), make_error_code(error::outbox_full));
    outgoing o{std::move(m), ttl > clock::duration::zero() ? clock::now() + ttl : clock::time_point{},
               std::move(h)};
    outbox_bytes += size;
    const auto expires = o.expires;
    outbox.push_back(std::move(o));
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

  outgoing pop_outgoing() {  // under mu
    auto o = std::move(outbox.front());
    outbox.pop_front();
    outbox_bytes -= o.msg.data.size();
    return o;
  }

  void arm_expiry(clock::time_point when) {
    expiry_timer.expires_at(when);
    expiry_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->sweep_expired();
    });
  }

  // Completes every queued message whose time to live has passed, so senders hear of it
  // promptly even during a long outage.
  void sweep_expired() {
    const auto lk = locked();
    const auto now = clock::now();
    auto next = clock::time_point::max();
    std::deque<outgoing> keep;  // rebuilt, not erased from: see event_waiter
    while (!outbox.empty()) {
      auto o = pop_outgoing();
      if (o.expires != clock::time_point{} && o.expires <= now) {
        complete_later(strand, std::move(o.handler), make_error_code(error::expired));
      } else {
        if (o.expires != clock::time_point{}) next = std::min(next, o.expires);
        outbox_bytes += o.msg.data.size();
        keep.push_back(std::move(o));
      }
    }
    outbox.swap(keep);
    if (next != clock::time_point::max()) arm_expiry(next);
  }

  void fail_outbox(error_code ec) {
    const auto lk = locked();
    while (!outbox.empty()) complete_later(strand, pop_outgoing().handler, ec);
  }

  // ---- close ------------------------------------------------------------------------------
  void close(close_reason r, void_handler h) {
    if (finished) return complete_later(strand, std::move(h), error_code{});
    if (h) close_waiters.push_back(std::move(h));
    if (close_requested) return;
    {
      const auto lk = locked();
      close_requested = true;
    }
    closing = std::move(r);
    if (!run_started) return finish();
    state = connection_state::closing;
    backoff_timer.cancel();
    space_cv.notify();
    fail_outbox(asio::error::operation_aborted);
    if (conn) {
      if (conn->open) {
        conn->close_pending = true;
        conn->hold();
        asio::co_spawn(strand, close_connection(conn), asio::detached);
      }
      else
        conn->ws.next_layer().close();  // still connecting: abandon the attempt
    }
  }

  // Our Close goes out at the next frame boundary; the reader goes on delivering what the
  // peer sends until its Close (RFC 6455 §5.5.1: it may send data before answering), which
  // ends the connection. The close timeout bounds the wait.
  asio::awaitable<void> close_connection(connection* c) {
    auto self = shared_from_this();
    while (!c->ended && (c->control_busy || c->async_writing)) co_await c->control_cv.wait();
    if (c->ended) {
      c->close_pending = false;
      c->control_cv.notify();
      c->release();
      co_return;
    }
    c->control_busy = true;
    c->arm(opts.close_timeout, error::close_timeout);
    auto& tr = c->ws.next_layer();
    if (tr.can_append_frame()) {
      tr.append_close(closing.code, closing.reason);
      co_await flush(tr);  // a failure shows in the reader
    } else {
      tr.close();  // the socket already failed
    }
    c->control_busy = false;
    c->close_pending = false;
    c->control_cv.notify();
    c->release();
  }

  void finish() {
    {
      const auto lk = locked();
      finished = true;
    }
    stop_watching();
    state = connection_state::closed;
    fail_outbox(asio::error::operation_aborted);
    expiry_timer.cancel();
    const auto lk = locked();
    if (event_waiter && events.empty()) {
      auto h = take_waiter();
      complete_later(strand, std::move(h), make_error_code(error::client_closed), event{});
    }
    for (auto& h : close_waiters) complete_later(strand, std::move(h), error_code{});
    close_waiters.clear();
  }

  // ---- connection -------------------------------------------------------------------------
  struct connect_result {
    error_code ec;
    unsigned status = 0;
    std::optional<std::chrono::seconds> retry_after;
  };

  // TLS to an https:// proxy (see net/detail/tls_relay.hpp), with the server's TLS context
  // when there is one, else one made for the proxy on first use.
  std::shared_ptr<asio::ssl::context> proxy_tls_ctx;
  asio::awaitable<error_code> tls_to_proxy(tcp::socket& s, const net::proxy_config& proxy) {
    if (!tls_ctx && !proxy_tls_ctx) {
      auto made = net::detail::make_client_context(opts.tls);
      if (!made) co_return made.error();
      proxy_tls_ctx = *made;
    }
    asio::ssl::context& ctx = tls_ctx ? *tls_ctx : *proxy_tls_ctx;
    const std::chrono::steady_clock::duration limit = opts.connect_timeout;
    co_return co_await net::detail::start_tls_relay(s, ctx, proxy, opts.tls, limit);
  }

  asio::awaitable<connect_result> connect(connection& c, const net::endpoint_url& url,
                                          const handshake_request& req) {
    connect_result r;
    auto& ws = c.ws;
    auto& tr = ws.next_layer();
    // DNS + TCP
    c.arm(opts.connect_timeout, error::connect_timeout);
    tcp::resolver resolver(strand);
    auto picked = net::choose_proxy(opts.proxy, url);
    if (!picked) {
      c.disarm();
      log(net::log_level::error, "tether.ws: invalid proxy URL (options.proxy or the environment): " +
                                     picked.error().message());
      r.ec = picked.error();
      co_return r;
    }
    const std::optional<net::proxy_config> proxy = *picked;
    // Arguments of co_awaited calls are named locals, never class temporaries: GCC 12
    // miscompiles temporaries that live across a co_await (they are copied bitwise).
    const std::string hop = net::detail::first_hop_host(proxy, url);
    const std::string service = std::to_string(net::detail::first_hop_port(proxy, url));
    error_code rec;
    if (connector) {
      rec = connector(tr.socket());
    } else {
      auto [dec, endpoints] = co_await resolver.async_resolve(hop, service, nothrow);
      rec = dec;
      if (!rec && !c.fail_reason) {
        auto [cec, ep] = co_await asio::async_connect(tr.socket(), endpoints, nothrow);
        rec = cec;
      }
    }
    if (!rec && !c.fail_reason && proxy && proxy->kind == net::proxy_kind::https) {
      rec = co_await tls_to_proxy(tr.socket(), *proxy);
      if (rec && !c.fail_reason)
        log(net::log_level::warn, "tether.ws: TLS with proxy " + proxy->redacted() + ": " + rec.message());
    }
    if (!rec && !c.fail_reason && proxy) {
      const std::string origin_host = url.host;
      const auto tunnel = co_await net::detail::open_tunnel(tr.socket(), *proxy, origin_host, url.port);
      rec = tunnel.ec;
      if (rec && !c.fail_reason)
        log(net::log_level::warn, "tether.ws: proxy " + proxy->redacted() + " gave no tunnel to " +
                                      url.host_header() + ": " + rec.message() +
                                      (tunnel.status ? " (HTTP " + std::to_string(tunnel.status) + ")" : ""));
    } else if (rec && !c.fail_reason && proxy) {
      log(net::log_level::warn, "tether.ws: cannot connect to proxy " + proxy->redacted() + ": " + rec.message());
    }
    c.disarm();
    if (c.fail_reason || rec) {
      r.ec = c.fail_reason ? c.fail_reason : rec;
      co_return r;
    }
    error_code ignored;
    tr.socket().set_option(tcp::no_delay(true), ignored);

    c.arm(opts.handshake_timeout, error::handshake_timeout);
    if (auto* tls = tr.tls()) {
      if (auto ec = net::detail::prepare_client_stream(tls->native_handle(), url.host, opts.tls)) {
        c.disarm();
        r.ec = ec;
        co_return r;
      }
      auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, nothrow);
      if (hec || c.fail_reason) {
        c.disarm();
        r.ec = c.fail_reason ? c.fail_reason : net::detail::explain_handshake_failure(tls->native_handle(), hec);
        co_return r;
      }
      std::string chain_pins;
      if (auto pec = net::detail::check_pins(tls->native_handle(), opts.tls, chain_pins)) {
        c.disarm();
        log(net::log_level::error, "tether.ws: " + url.host_header() + ": " + pec.message() +
                                       " (the verified chain's pins: " + chain_pins + ")");
        r.ec = pec;
        co_return r;
      }
    }

    ws.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                 websocket::stream_base::none(), false});
    ws.set_option(websocket::stream_base::decorator(
        [this, &req](websocket::request_type& m) {
          m.set(beast::http::field::user_agent, "tether/" TETHER_VERSION_STRING);
          if (!opts.subprotocols.empty()) {
            std::string list;
            for (const auto& p : opts.subprotocols) list += (list.empty() ? "" : ", ") + p;
            m.set(beast::http::field::sec_websocket_protocol, list);
          }
          for (const auto& [k, v] : req.headers) m.insert(k, v);
        }));
    websocket::permessage_deflate pmd;
    pmd.client_enable = opts.permessage_deflate;
    ws.set_option(pmd);
    ws.auto_fragment(false);
    ws.write_buffer_bytes(std::max<std::size_t>(opts.write_coalesce_bytes, 8192));
    ws.read_message_max(opts.max_message_size);
    ws.control_callback([this, &c](websocket::frame_type kind, beast::string_view payload) {
      if (kind != websocket::frame_type::pong) return;
      c.traffic = true;
      if (c.ping_sent == clock::time_point{}) return;
      const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - c.ping_sent);
      rtt_us = rtt.count();
      if (opts.metrics) opts.metrics->observe(net::metric::ws_ping_rtt, {}, rtt);
      // Telemetry, not a message: when the application is behind, it is not queued.
      if (opts.pong_events) deliver_status(pong{std::string(payload), rtt});
    });

    auto target_url = url;
    if (!req.token.empty()) net::append_query_parameter(target_url, opts.token_parameter, req.token);
    websocket::response_type res;
    const std::string host = url.host_header();
    auto [wec] = co_await ws.async_handshake(res, host, target_url.target, nothrow);
    c.disarm();
    if (c.fail_reason) wec = c.fail_reason;
    // Only a response Beast actually read says anything about the status (a default
    // response object reads as 200).
    if (wec == websocket::error::upgrade_declined) {
      r.status = res.result_int();
      r.ec = make_error_code(error::handshake_rejected);
      if (auto it = res.find(beast::http::field::retry_after); it != res.end())
        r.retry_after = net::parse_retry_after(std::string_view(it->value().data(), it->value().size()),
                                               std::chrono::system_clock::now());
      co_return r;
    }
    // A response that is no upgrade but that Beast could not read whole (a web page larger
    // than its limit, a connection closed after the header): still a refusal with a status.
    if (wec && !c.fail_reason && tr.response_status() != 0 && tr.response_status() != 101) {
      r.status = tr.response_status();
      r.ec = make_error_code(error::handshake_rejected);
      co_return r;
    }
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    // RFC 6455 §4.1: fail on a subprotocol or extension that was not offered.
    if (auto it = res.find(beast::http::field::sec_websocket_protocol); it != res.end()) {
      const std::string chosen(it->value());
      if (std::find(opts.subprotocols.begin(), opts.subprotocols.end(), chosen) == opts.subprotocols.end()) {
        r.ec = make_error_code(error::subprotocol_mismatch);
        tr.close();
        co_return r;
      }
    }
    for (auto it = res.find(beast::http::field::sec_websocket_extensions);
         it != res.end() && it->name() == beast::http::field::sec_websocket_extensions; ++it) {
      const std::string_view ext(it->value().data(), it->value().size());
      const bool deflate = ext.substr(0, 18) == "permessage-deflate" &&
                           (ext.size() == 18 || ext[18] == ';' || ext[18] == ' ');
      if (!opts.permessage_deflate || !deflate || ext.find(',') != std::string_view::npos) {
        r.ec = make_error_code(error::extension_mismatch);
        tr.close();
        co_return r;
      }
      c.deflate = true;
    }
    connected ev;
    for (const auto& f : res) ev.response_headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (auto it = res.find(beast::http::field::sec_websocket_protocol); it != res.end())
      ev.subprotocol = std::string(it->value());
    c.open = true;
    deliver_status(std::move(ev));
    co_return r;
  }

  // Waits until every byte written so far is on the socket (or the socket failed).
  static asio::awaitable<error_code> flush(transport& tr) {
    auto [ec] = co_await asio::async_initiate<decltype(nothrow), void(error_code)>(
        [&tr](auto h) { tr.flush(std::move(h)); }, nothrow);
    co_return ec;
  }

  // The one writer. Small messages queued together are framed synchronously into the
  // transport's buffer and go out in one socket write; a message larger than
  // write_coalesce_bytes goes through Beast's asynchronous write, whose memory the transport
  // bounds. Sends complete once their bytes are on the socket.
  asio::awaitable<void> writer(connection& c) {
    auto& ws = c.ws;
    auto& tr = ws.next_layer();
    const auto coalesce = opts.write_coalesce_bytes;
    while (!c.ended) {
      {
        auto lk = locked();
        if (outbox.empty() || close_requested) {
          lk.unlock();
          co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
              [this, &c](auto h) {
                const auto lk2 = locked();
                if (c.ended || (!outbox.empty() && !close_requested))
                  asio::post(strand, std::move(h));
                else
                  writer_parked.emplace(std::move(h));
              },
              asio::use_awaitable);
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
          if (outbox_bytes >= coalesce || (event_waiter && events.empty())) break;
          seen = app_progress;
        }
        co_await asio::post(strand, asio::use_awaitable);
        if (c.ended || close_requested) break;
        const auto lk = locked();
        if (app_progress == seen) break;
      }
      if (c.ended || close_requested) continue;
      std::vector<void_handler> written;
      error_code ec;
      // The next message to write, if any (expired ones are completed on the way).
      auto take = [&](bool first) -> std::optional<outgoing> {
        const auto lk = locked();
        while (!outbox.empty()) {
          const auto size = outbox.front().msg.data.size();
          if (!first && size > coalesce) return std::nullopt;
          auto o = pop_outgoing();
          if (o.expires != clock::time_point{} && o.expires <= clock::now()) {
            complete_later(strand, std::move(o.handler), make_error_code(error::expired));
            continue;
          }
          ws.binary(o.msg.kind == message_kind::binary);
          return o;
        }
        return std::nullopt;
      };
      auto o = take(true);
      if (!o) continue;
      std::size_t sent_bytes = 0;
      if (o->msg.data.size() > coalesce) {
        // A large message: Beast's asynchronous write, whose memory the transport bounds.
        c.async_writing = true;
        auto [wec, n] = co_await ws.async_write(asio::buffer(o->msg.data), nothrow);
        c.async_writing = false;
        sent_bytes = o->msg.data.size();
        c.control_cv.notify();  // a close waits for the frame to end
        ec = wec;
        written.push_back(std::move(o->handler));
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
          written.push_back(std::move(next->handler));
          sent_bytes = bytes;
          if (ec) break;
          {
            const auto lk = locked();
            if (outbox.empty() || bytes + outbox.front().msg.data.size() > coalesce) break;
          }
          next.reset();
          if (auto more = take(false)) next.emplace(std::move(*more));
        }
      }
      // Even when the write went out whole at once, the flush completes through a post: that
      // turn of the event loop is when the application's next sends gather for the next write
      // (without it, a sending coroutine's messages go out one frame per write).
      const auto fec = co_await flush(tr);
      if (!ec) ec = fec;
      if (opts.metrics && !ec) count_written(written.size(), sent_bytes);
      complete_all(inner, strand, std::move(written), ec);
      if (ec) {
        tr.close();
        break;
      }
    }
    c.release();
  }

  asio::awaitable<void> pinger(connection& c) {
    const auto interval = opts.ping_interval;
    while (!c.ended) {
      if (interval.count() <= 0) {
        c.ping_timer.expires_at(clock::time_point::max());
        co_await c.ping_timer.async_wait(nothrow);
        continue;
      }
      c.ping_timer.expires_after(interval);
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
      if (pec || c.ended || opts.pong_timeout.count() <= 0) continue;
      c.ping_timer.expires_after(opts.pong_timeout);
      auto [wec] = co_await c.ping_timer.async_wait(nothrow);
      if (wec || c.ended) continue;
      auto& tr = c.ws.next_layer();
      // Silence since the ping means a dead peer, unless we stopped reading ourselves
      // because the application is not pulling events.
      if (tr.last_rx() < sent && !c.reader_paused && tr.buffered() == 0) {
        log(net::log_level::warn, "tether.ws: no answer within pong_timeout; failing the connection");
        if (!c.fail_reason) c.fail_reason = make_error_code(error::pong_timeout);
        tr.close();
      }
    }
    c.release();
  }

  // Ends an open connection: its socket closed, the writer (which must see `ended` when it
  // is rung) and the pinger and every other helper ended before `c` may go.
  asio::awaitable<void> wind_down(connection& c) {
    c.ended = true;
    c.ws.next_layer().close();
    c.watchdog.cancel();
    ring_writer();
    co_await c.retire();
  }

  // Runs one open connection until it ends; returns how it ended.
  asio::awaitable<attempt_outcome> serve(connection& c) {
    auto self = shared_from_this();
    c.hold();
    c.hold();
    asio::co_spawn(strand, writer(c), asio::detached);
    asio::co_spawn(strand, pinger(c), asio::detached);
    attempt_outcome out;
    out.opened = true;
    const auto opened = clock::now();
    beast::flat_buffer buf;
    auto& tr = c.ws.next_layer();
    for (;;) {
      buf.clear();
      // A message that has wholly arrived is read synchronously: no operation, no post.
      // Not while Beast's asynchronous write is between two pieces of a frame (an answer to
      // a ping must not land inside it) or a close handshake reads.
      const bool sync = tr.messages().ready() > 0 && !c.async_writing && !c.close_pending && !close_requested;
      error_code ec;
      if (sync) {
        c.ws.read(buf, ec);
      } else {
        auto [aec, n] = co_await c.ws.async_read(buf, nothrow);
        ec = aec;
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
        if (ec == websocket::error::closed) {
          out.close_code = c.ws.reason().code;
          if (out.close_code == 1005) out.close_code = 1000;  // no status code given
        } else {
          out.error = c.fail_reason ? c.fail_reason : ec;
          out.close_code = close_code_for(ec);
        }
        if (close_requested && !c.fail_reason && ec == websocket::error::closed) {
          out.error = {};
          out.close_code = c.ws.reason().code != 0 && c.ws.reason().code != 1005 ? c.ws.reason().code : closing.code;
        }
        break;
      }
      tr.messages().take();
      c.traffic = true;
      if (queue_full()) co_await wait_for_space(&c);
      const auto data = buf.cdata();
      if (opts.metrics) {
        opts.metrics->count(net::metric::ws_messages_in, {}, 1);
        opts.metrics->count(net::metric::ws_bytes_in, {}, data.size());
      }
      deliver(message{c.ws.got_text() ? message_kind::text : message_kind::binary,
                      std::string(static_cast<const char*>(data.data()), data.size())});
      // The last read drained the socket and no whole message is buffered: reading now would
      // most likely be a system call that finds nothing. Whatever the application did with
      // the message (its answer, already posted) goes first: one turn of the event loop, on
      // the application's executor so that the strand stays free for the writer.
      if (tr.drained() && tr.messages().ready() == 0) co_await asio::post(inner, asio::use_awaitable);
    }
    co_await wind_down(c);
    out.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - opened);
    out.traffic = c.traffic;
    co_return out;
  }

  asio::awaitable<error_code> run() {
    auto self = shared_from_this();
    // Bad settings end run at once, reported as an event too.
    auto fail = [this](error_code ec) {
      deliver_status(disconnected{1006, {}, ec, 0});
      return ec;
    };
    auto url = net::parse_url(opts.url);
    if (!url) co_return fail(url.error());
    if (url->scheme != net::scheme::ws && url->scheme != net::scheme::wss)
      co_return fail(make_error_code(error::unsupported_scheme));
    if (url->secure()) {
      if (opts.tls.insecure_skip_verify)
        log(net::log_level::warn, "tether.ws: TLS verification is OFF (insecure_skip_verify)");
      auto ctx = net::detail::make_client_context(opts.tls);
      if (!ctx) co_return fail(ctx.error());
      tls_ctx = *ctx;
    }
    reconnect_fsm fsm(opts.reconnect);
    if (opts.watch_network) watch_network();
    handshake_request req{opts.headers, opts.token, 0};
    error_code final_ec;
    for (std::uint32_t attempt = 0;; ) {
      if (close_requested) break;
      state = attempt == 0 ? connection_state::connecting : connection_state::reconnecting;
      req.attempt = attempt;
      if (opts.before_connect) opts.before_connect(req);
      if (opts.log.enabled(net::log_level::info))
        log(net::log_level::info, "tether.ws: connecting to " + url->redacted());
      connection c(strand, tls_ctx.get(), opts);
      conn = &c;
      auto cr = co_await connect(c, *url, req);
      attempt_outcome out;
      if (!cr.ec && !close_requested) {
        state = connection_state::open;
        if (opts.metrics) opts.metrics->count(net::metric::ws_connections, {}, 1);
        // An exception (an application's event handler that throws, run inline) must not
        // free `c` under the writer and pinger: they end first, then it goes on.
        std::exception_ptr thrown;
        try {
          out = co_await serve(c);
        } catch (...) {
          thrown = std::current_exception();
        }
        if (thrown) {
          conn = nullptr;
          co_await wind_down(c);
          std::rethrow_exception(thrown);
        }
        conn = nullptr;
        deliver_status(disconnected{out.close_code,
                             close_requested ? closing.reason : std::string(c.ws.reason().reason.c_str()),
                             out.error, 0});
      } else {
        conn = nullptr;
        out.error = cr.ec ? cr.ec : error_code{asio::error::operation_aborted};
        out.http_status = cr.status;
        out.retry_after = cr.retry_after;
      }
      // Whatever still uses `c` (a close or ping that started meanwhile, the transport's own
      // socket write) ends before `c` does.
      c.ws.next_layer().close();
      co_await c.retire();
      co_await flush(c.ws.next_layer());
      if (close_requested) break;
      const auto d = fsm.next(out, clock::now());
      if (!d.retry) {
        if (!out.opened) deliver_status(disconnected{1006, {}, out.error, out.http_status});
        final_ec = d.error;
        break;
      }
      attempt = d.attempt;
      state = connection_state::reconnecting;
      // A server's normal close is no error, but it is the cause of this reconnection.
      const auto cause = out.error || !out.opened ? out.error : make_error_code(error::closed_by_server);
      if (opts.metrics) opts.metrics->count(net::metric::ws_reconnects, cause_label(cause), 1);
      deliver_status(reconnecting{d.attempt, d.delay, cause, out.http_status, out.opened ? out.close_code : std::uint16_t{0}});
      if (close_requested) break;
      network_changed = false;
      backoff_timer.expires_after(d.delay);
      co_await backoff_timer.async_wait(nothrow);
    }
    co_return final_ec;
  }
};

std::shared_ptr<client_impl> make_client_impl(const asio::any_io_executor& ex, options opts) {
  return std::make_shared<client_impl>(ex, std::move(opts));
}

void start_run(const std::shared_ptr<client_impl>& impl, void_handler h) {
  asio::dispatch(impl->strand, [impl, h = std::move(h)]() mutable {
    if (impl->run_started || impl->finished) {
      return complete_later(impl->strand, std::move(h),
                            make_error_code(impl->finished ? error::client_closed : error::busy));
    }
    impl->run_started = true;
    asio::co_spawn(impl->strand, impl->run(),
                   [impl, h = std::move(h)](const std::exception_ptr& ep, error_code ec) mutable {
                     if (ep) ec = make_error_code(error::protocol_error);
                     // run's handler first, so that whoever awaited close() sees run ended.
                     complete_later(impl->strand, std::move(h), ec);
                     impl->finish();
                   });
  });
}

void start_next_event(const std::shared_ptr<client_impl>& impl, event_handler h) { impl->next_event(std::move(h)); }

void start_send(const std::shared_ptr<client_impl>& impl, message m, std::chrono::steady_clock::duration ttl,
                void_handler h) {
  impl->send(std::move(m), ttl, std::move(h));
}

void start_ping(const std::shared_ptr<client_impl>& impl, std::string payload, void_handler h) {
  if (payload.size() > 125) {
    return complete_later(impl->strand, std::move(h), make_error_code(error::invalid_argument));
  }
  asio::dispatch(impl->strand, [impl, p = std::move(payload), h = std::move(h)]() mutable {
    auto* c = impl->conn;
    if (!c || !c->open || c->ended || impl->close_requested)
      return complete_later(impl->strand, std::move(h), make_error_code(error::not_connected));
    c->hold();
    asio::co_spawn(
        impl->strand,
        [impl, c, p = std::move(p)]() -> asio::awaitable<error_code> {
          while (!c->ended && c->control_busy) co_await c->control_cv.wait();
          if (c->ended) {
            c->release();
            co_return make_error_code(error::not_connected);
          }
          c->control_busy = true;
          c->ping_sent = clock::now();
          websocket::ping_data pd(p.data(), p.size());
          auto [ec] = co_await c->ws.async_ping(pd, nothrow);
          c->control_busy = false;
          c->control_cv.notify();
          c->release();
          co_return ec;
        },
        [impl, h = std::move(h)](const std::exception_ptr&, error_code ec) mutable {
          complete_later(impl->strand, std::move(h), ec);
        });
  });
}

void start_close(const std::shared_ptr<client_impl>& impl, close_reason r, void_handler h) {
  asio::dispatch(impl->strand, [impl, r = std::move(r), h = std::move(h)]() mutable {
    impl->close(std::move(r), std::move(h));
  });
}

connection_state get_state(const client_impl& impl) noexcept { return impl.state.load(); }
std::optional<std::chrono::microseconds> get_rtt(const client_impl& impl) noexcept {
  const auto v = impl.rtt_us.load();
  if (v < 0) return std::nullopt;
  return std::chrono::microseconds{v};
}
/// Reaches the implementation of a client (tests and fuzzers that compile it in).
struct client_access {
  static client_impl& impl(client& c) noexcept { return *c.impl_; }
};

const options& get_options(const client_impl& impl) noexcept { return impl.opts; }
asio::any_io_executor get_executor(const client_impl& impl) noexcept { return impl.inner; }

}  // namespace detail
}  // namespace tether::ws
