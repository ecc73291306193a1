// tether/ws/detail/client_impl.hpp: the state of one ws::client and the declarations of its
// parts, each defined in its own file under ws/impl/: client_connect.ipp (one attempt),
// client_session.ipp (an open connection: reader, pinger), client_write.ipp (the outbox and
// its writer), client_events.ipp (the application's event queue), client_close.ipp and
// client_run.ipp (attempts and reconnections). Private to the compiled part (it includes
// Beast). The parts define the members `inline`, as they were inside the class: the lambdas
// of a coroutine then have linkage, which its frame needs (GCC's -Wsubobject-linkage).
#pragma once

#include <tether/net/retry.hpp>
#include <tether/net/detail/proxy_tunnel.hpp>
#include <tether/net/detail/tls_context.hpp>
#include <tether/net/detail/tls_relay.hpp>
#include <tether/net/url.hpp>
#include <tether/ws/client.hpp>
#include <tether/ws/detail/executors.hpp>
#include <tether/ws/detail/queues.hpp>
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
#include <boost/asio/deferred.hpp>
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
#include <limits>
#include <mutex>

namespace tether::ws::detail {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using clock = std::chrono::steady_clock;
// The connection's own co_awaits take asio::deferred, which co_await consumes directly:
// use_awaitable's initiation is a coroutine of its own, a frame allocated per operation (four
// per message on the hot path, more than the two Asio's per-thread cache keeps, so most went
// to malloc).
constexpr auto nothrow = asio::as_tuple(asio::deferred);

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
  // The writer is in a large message's write (a close waits for it to end): tether's own
  // framer's, or Beast's asynchronous write of a compressed one (no synchronous reads then).
  enum class large_write : unsigned char { none, ours, beasts };
  large_write writing_large = large_write::none;
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
    stop_watching();
    while (helpers > 0) co_await done_cv.wait();
  }
  std::optional<connected> hello;  // the handshake's event, until run() announces it
  error_code fail_reason;  // set when we fail the connection on purpose (pong timeout...)
  clock::time_point ping_sent{};

  // Watchdog: close the socket if a phase does not finish by `d`, and remember why. One wait
  // serves every phase: arming moves the deadline and, when the pending wait ends no later,
  // leaves it be; a wait that ends before the deadline waits again, and one that finds no
  // deadline ends. No cancellation and no new timer expiry per phase (each would cost a turn
  // of the event loop or a system call on every connect).
  void arm(std::chrono::milliseconds d, error e) {
    deadline = clock::now() + d;
    deadline_reason = e;
    if (!watching || watchdog.expiry() > deadline) watch();
  }
  void disarm() noexcept { deadline = clock::time_point::max(); }
  /// Ends the pending wait for good (the connection is ending).
  void stop_watching() {
    disarm();
    watching = false;
    watchdog.cancel();
  }

 private:
  clock::time_point deadline = clock::time_point::max();
  error deadline_reason{};
  bool watching = false;  // a wait is pending on `watchdog`
  void watch() {
    watching = true;
    watchdog.expires_at(deadline);  // cancels a pending wait, whose handler then does nothing
    watchdog.async_wait([this](error_code ec) {
      if (ec) return;  // cancelled: a newer wait took over, or the connection is ending
      watching = false;
      if (deadline == clock::time_point::max()) return;
      if (clock::now() < deadline) return watch();
      if (!fail_reason) fail_reason = make_error_code(deadline_reason);
      ws.next_layer().close();
    });
  }
};

struct outgoing {
  message msg;
  clock::time_point expires;  // time_point{} = never
  send_handler handler;
  std::size_t bytes() const noexcept { return msg.data.size(); }
};

struct is_message_event {
  bool operator()(const event& e) const noexcept { return std::holds_alternative<message>(e); }
};

/// Runs `h(args...)` on `ex` with that executor's dispatch: inline when it is the one running.
/// For an io_context executor or a strand of one that is running here, the call is made
/// directly, as their dispatch would make it, without the type-erased function object that
/// dispatch through an any_io_executor allocates (two per message: the event and the send's
/// completion). What a throw does stays theirs: out of the io_context's run(), not to the
/// caller; a strand's reaches the caller.
template <class Executor, class Handler, class... Args>
void dispatch_call(const Executor& ex, Handler h, Args&&... args) {
  if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
    if (const auto* io = ex.template target<asio::io_context::executor_type>(); io && io->running_in_this_thread()) {
      try {
        std::move(h)(std::forward<Args>(args)...);
      } catch (...) {
        asio::post(*io, [e = std::current_exception()] { std::rethrow_exception(e); });
      }
      return;
    }
    if (const auto* s = ex.template target<asio::strand<asio::io_context::executor_type>>();
        s && s->running_in_this_thread())
      return std::move(h)(std::forward<Args>(args)...);
  }
  asio::dispatch(ex, [h = std::move(h), t = std::make_tuple(std::forward<Args>(args)...)]() mutable {
    std::apply([&h](auto&&... a) { std::move(h)(std::move(a)...); }, std::move(t));
  });
}

/// Runs `h(args...)` on the handler's own executor (`fallback` when it has none) with that
/// executor's dispatch: inline when it is the one running. Only from a turn of the event loop
/// of the connection's own, never inside the call that started the operation.
template <class Handler, class... Args>
void complete_on_own(const asio::any_io_executor& fallback, Handler h, Args&&... args) {
  // Asked before the handler moves (the order of a call's arguments is unspecified).
  const auto ex = asio::get_associated_executor(h, fallback);
  dispatch_call(ex, std::move(h), std::forward<Args>(args)...);
}

/// As above for a handler whose executor was taken when its operation started: no conversion.
template <class Signature, class... Args>
void complete_on_own(const asio::any_io_executor& fallback, erased_handler<Signature> h, Args&&... args) {
  if (!h.ex_known) return complete_on_own(fallback, std::move(h.h), std::forward<Args>(args)...);
  const asio::any_io_executor& ex = h.ex ? h.ex : fallback;
  dispatch_call(ex, std::move(h.h), std::forward<Args>(args)...);
}

/// The hot paths' completion: posted to the application's executor `inner` (no strand queue), then
/// dispatched to the handler's executor (`fallback`, the strand, when it has none): inline
/// when that executor is the one running. Never inline: the initiating call must return first.
/// (Not asio::append: in Boost 1.81 it hands any_completion_handler on as an lvalue, which that
/// type's unconstrained converting constructor wraps in itself without end.)
template <class Handler, class... Args>
void complete_soon(const asio::any_io_executor& inner, const asio::any_io_executor& fallback, Handler h,
                   Args... args) {
  asio::post(inner, [fallback, h = std::move(h), t = std::make_tuple(std::move(args)...)]() mutable {
    std::apply([&](auto&&... a) { complete_on_own(fallback, std::move(h), std::move(a)...); }, std::move(t));
  });
}

/// As complete_soon, posted through `fallback` itself (which keeps the caller's executor);
/// an empty handler is dropped.
template <class Handler, class... Args>
void complete_later(const asio::any_io_executor& fallback, Handler h, Args... args) {
  if (!h) return;
  complete_soon(fallback, fallback, std::move(h), std::move(args)...);
}

/// Completes a send handler now (complete_on_own). A handler that throws does not end the
/// caller (a coroutine of the connection, completing a batch): its exception is thrown again
/// from `inner`, out of the event loop's run(), as a posted handler's would be, and the other
/// handlers of the batch still complete.
inline void complete_now(const asio::any_io_executor& inner, const asio::any_io_executor& fallback,
                         send_handler h, error_code ec) {
  if (!h) return;
  try {
    complete_on_own(fallback, std::move(h), ec);
  } catch (...) {
    asio::post(inner, [e = std::current_exception()] { std::rethrow_exception(e); });
  }
}

struct client_impl : std::enable_shared_from_this<client_impl> {
  client_impl(const asio::any_io_executor& ex, options o)
      : inner(ex),
        strand(strand_over(ex)),
        opts(std::move(o)),
        events(opts.event_queue_limit),
        space_cv(strand),
        outbox(opts.outbox_max_messages, opts.outbox_max_bytes),
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
  // thread, without a trip through the strand: events, event_waiter, outbox,
  // app_progress, the waiting flags, and the writes of finished and close_requested. The
  // strand's code reads those two flags freely (only it writes them) and takes `mu` for the rest.
  mutable std::mutex mu;
  std::unique_lock<std::mutex> locked() const { return std::unique_lock<std::mutex>(mu); }

  // Events for the application (their rules: ws/detail/queues.hpp).
  event_queue<event, is_message_event> events;
  // Boost 1.81's any_completion_handler move-assignment recurses without end (it converts
  // from an lvalue); handlers are therefore only ever move-constructed: optional + emplace.
  std::optional<event_handler> event_waiter;
  async_cv space_cv;
  bool finished = false;

  // Outbox.
  std::uint64_t app_progress = 0;  // events taken + messages queued: the application is busy
  outbox_queue<outgoing> outbox;  // its rules: ws/detail/queues.hpp
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
  // The socket and its buffer exist only for a client that watches (options::watch_network,
  // off by default): the others carry no 8 KiB buffer, zeroed when the client was made.
  struct netlink_watch {
    explicit netlink_watch(const asio::any_io_executor& ex) : sock(ex) {}
    asio::generic::raw_protocol::socket sock;
    std::array<nlmsghdr, 8192 / sizeof(nlmsghdr)> buf{};  // aligned for the headers
  };
  std::unique_ptr<netlink_watch> netlink;

  void watch_network() {
    const asio::generic::raw_protocol proto(AF_NETLINK, NETLINK_ROUTE);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    error_code ec;
    auto w = std::make_unique<netlink_watch>(strand);
    w->sock.open(proto, ec);
    if (!ec) w->sock.bind(asio::generic::raw_protocol::endpoint(&sa, sizeof sa), ec);
    if (ec) {
      log(net::log_level::warn, "tether.ws: cannot watch the network (netlink): " + ec.message());
      return;
    }
    netlink = std::move(w);
    read_netlink();
  }

  void read_netlink() {
    netlink->sock.async_receive(asio::buffer(netlink->buf), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec || self->finished) return;
      bool up = false;
      // Walk the messages by their aligned lengths (NLMSG_NEXT's casts trip -Wcast-align).
      std::size_t off = 0;
      const auto* base = reinterpret_cast<const unsigned char*>(self->netlink->buf.data());
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
      netlink->sock.close(ignored);
    }
  }
#else
  void watch_network() {}
  void stop_watching() {}
#endif
  bool network_changed = false;

  // ---- the application's events (client_events.ipp) ----------------------------------------
  void deliver(event e);
  // Status events never wait (event_queue::push_status); messages wait for room instead.
  // A waiting application gets one through a post by default; `dispatched` (only from a
  // completion of the connection's own, never inside a call of the application's) dispatches
  // it as deliver() does a message: inline when its executor is the one running.
  enum class delivery { posted, dispatched };
  void deliver_status(event e, delivery how = delivery::posted);
  bool queue_full() const;
  // Waits while the event queue is full (the reader stops reading the socket meanwhile), and
  // then until the application has taken half of it, so that the reader is not woken for
  // every event taken. Events are delivered synchronously with deliver(): they are never
  // passed into a coroutine call, since GCC 12 can copy a class prvalue argument of a
  // coroutine bitwise.
  bool space_waiting = false;
  asio::awaitable<void> wait_for_space(connection* c = nullptr);
  event_handler take_waiter();
  void next_event(event_handler h);  // from any thread

  // ---- the outbox and its writer (client_write.ipp) ----------------------------------------
  void count_written(std::size_t messages, std::size_t bytes);
  void send(message m, clock::duration ttl, send_handler h);  // from any thread
  void arm_expiry(clock::time_point when);
  void sweep_expired();
  void fail_outbox(error_code ec);
  static asio::awaitable<error_code> flush(transport& tr, bool whole_records = false);
  static asio::awaitable<error_code> sent_upto(transport& tr, std::uint64_t upto);
  asio::awaitable<void> writer(connection& c);

  // ---- close (client_close.ipp) ------------------------------------------------------------
  void close(close_reason r, void_handler h);
  asio::awaitable<void> close_connection(connection* c);
  void finish();

  // ---- one attempt (client_connect.ipp) ----------------------------------------------------
  struct connect_result {
    error_code ec;
    unsigned status = 0;
    std::optional<std::chrono::seconds> retry_after;
  };
  // TLS to an https:// proxy (see net/detail/tls_relay.hpp), with the server's TLS context
  // when there is one, else one made for the proxy on first use.
  std::shared_ptr<asio::ssl::context> proxy_tls_ctx;
  asio::awaitable<error_code> tls_to_proxy(tcp::socket& s, const net::proxy_config& proxy);
  asio::awaitable<connect_result> connect(connection& c, const net::endpoint_url& url, const handshake_request& req);

  // ---- an open connection (client_session.ipp) and the attempts (client_run.ipp) -----------
  asio::awaitable<void> pinger(connection& c);
  asio::awaitable<void> wind_down(connection& c);
  asio::awaitable<attempt_outcome> serve(connection& c);
  asio::awaitable<error_code> run();
};

}  // namespace tether::ws::detail
