// ws_echo_bench: tether's WebSocket client against a plain Boost.Beast coroutine client (the
// baseline), same echo server, same run.
//
//   ws_echo_bench [--url ws://HOST:PORT/] --size BYTES --count N --inflight K [--client tether|beast|tcp]
//                 [--connections C]   # C clients at once on one thread, N messages shared out
//   ws_echo_bench [--url ws://HOST:PORT/] --idle N [--client tether|beast]
//   ws_echo_bench --serve PORT        # only the echo server (0: any port, printed on stdout)
//   ws_echo_bench [--url ws://HOST:PORT/] --connects N|--connects-fresh N [--client tether|beast|beast-timeouts]
//
// wss: --tls-cert FILE --tls-key FILE make the echo server (built-in or --serve) speak TLS
// (the URL becomes wss://); clients trust --ca FILE (or, with --insecure, anything). Every
// client then runs over TLS: Beast as websocket::stream<ssl::stream<tcp::socket>> with SNI and
// host name verification, the ceiling as raw bytes over ssl::stream.
//
// --connects N: N connections one after another in one process and one running io_context (as
// an application keeps one event loop for its connections and reconnections), each a connect
// (TCP and upgrade), one 16-byte echo and a close; prints the first connect's time (one-time
// costs of the process and of the event loop included) and the median of the others.
// --connects-fresh N: the same, each connection on an io_context of its own, made and run for it.
//
// --client beast is the baseline as a demanding Beast user writes it: write_buffer_bytes of
// 64 KiB (Beast's default 4 KiB writes a 1 MiB message in 256 pieces) and TCP_NODELAY.
// --client beast-timeouts is that baseline with the timeouts tether has (30 s for the connect,
// the TLS handshake and the upgrade, as Beast's own client examples set them), for the connect
// case: a client without them waits forever on a server that accepts and never answers.
// --client tcp is the ceiling: the same bytes, unframed, through the same server's raw echo
// (a connection that starts with "RAW-ECHO\r\n\r\n" instead of an upgrade request).
// The JSON line also carries the client's CPU time per message (user + system, this process
// only, so run the server apart with --serve to keep it out) and its peak resident memory.
//
// --idle: opens N connections and leaves them idle (tether with its default keepalive; Beast
// with a read pending on each, as an application would), then reports the process's resident
// memory above its baseline (measured after one connection was opened and closed) per
// connection. Without --url the echo server runs in a child process so that only the client
// side is measured.
//
// Sends N binary messages of SIZE bytes with at most K in flight, checks every echo, prints one
// JSON line. Without --url it starts its own echo server on 127.0.0.1 in a second thread: a
// streaming frame echo that reads 64 KiB at a time and answers what each read brought (whole
// frames and the part of a frame that has arrived) with one write, so that the server is not
// the bottleneck.
#include <tether/ws.hpp>
#include <tether/ws/detail/frame_header.hpp>
#include <tether/ws/detail/key_rewriter.hpp>
#include <tether/net/detail/resolve.hpp>
#include <tether/net/url.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <memory>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clk = std::chrono::steady_clock;
using tether::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

struct args {
  std::string url;
  std::size_t size = 100, count = 1000, inflight = 1, idle = 0;
  std::string client = "tether";
  long serve = -1;  ///< --serve PORT: run only the server
  std::size_t connects = 0;
  bool connects_fresh = false;  ///< --connects-fresh N: an io_context per connection
  /// The clients' io_context concurrency hint (--io-hint 1|unsafe-io): 1 by default, as a
  /// single-threaded program sets it; unsafe-io promises Asio one thread (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO).
  int io_hint = 1;
  std::size_t connections = 1;  ///< --connections N: clients at once (each with K in flight)
  std::string tls_cert, tls_key;  ///< the server's TLS certificate and key (wss)
  std::string ca;                 ///< the clients' extra trust anchor
  bool insecure = false;          ///< clients verify nothing
};

/// The server's TLS context when it has a certificate, else null.
std::shared_ptr<asio::ssl::context> server_tls_context(const args& a) {
  if (a.tls_cert.empty()) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->use_certificate_chain_file(a.tls_cert);
  ctx->use_private_key_file(a.tls_key, asio::ssl::context::pem);
  return ctx;
}

/// A client context as a careful user sets it up: the system store (or, with --ca, that CA
/// only) and peer verification.
asio::ssl::context client_tls_context(const args& a) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  // With --ca, that CA only (as tether is told below): parsing the system's trust store takes
  // ~20 ms, which would hide the handshake in every connect.
  if (a.ca.empty())
    ctx.set_default_verify_paths();
  else
    ctx.load_verify_file(a.ca);
  ctx.set_verify_mode(a.insecure ? asio::ssl::verify_none : asio::ssl::verify_peer);
  return ctx;
}

/// SNI (unless the host is an address) and host name verification on a client TLS stream.
template <class Tls>
void prepare_tls(Tls& t, const std::string& host, const args& a) {
  error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (ec) SSL_set_tlsext_host_name(t.native_handle(), host.c_str());
  if (!a.insecure) t.set_verify_callback(asio::ssl::host_name_verification(host));
}

constexpr std::string_view raw_preamble = "RAW-ECHO\r\n\r\n";

// ---------------------------------------------------------------------------------------
// The built-in echo server.

// The server's framing: every client frame back unmasked (same opcode, FIN kept, RSV
// cleared; a ping as a pong; pongs dropped), streamed: the bytes of a frame go back as they
// arrive, a partial frame's too, so that what one read brings goes back in one write of
// about its size, as the ceiling's raw echo does. (Answering only whole frames turned a 16 KiB
// TLS record of 1 KiB messages, which ends inside a frame, into a record and a sliver of a
// few hundred bytes: a second socket write and record for the server and the client alike.)
struct frame_echo {
  std::uint64_t left = 0;  // payload bytes of the current frame still to come
  std::size_t mask_at = 0;  // offset into the mask of its next payload byte
  unsigned char mask[4] = {};
  bool masked = false, drop = false, closing = false;
  bool closed = false;  // a close frame went back whole: the session ends

  // Appends to `out` (cleared first) the answer to the bytes of `in`; returns how many it used
  // (a frame header that has not wholly arrived waits for the next read).
  std::size_t feed(std::string& in, std::string& out) {
    out.clear();
    std::size_t pos = 0;
    while (!closed) {
      if (left == 0 && !start_frame(in, pos, out)) break;
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(left, in.size() - pos));
      if (k == 0 && left > 0) break;
      auto* payload = reinterpret_cast<unsigned char*>(in.data() + pos);
      if (masked) tether::ws::detail::mask_copy(payload, payload, k, mask, mask_at);
      mask_at = (mask_at + k) % 4;
      if (!drop) out.append(reinterpret_cast<const char*>(payload), k);
      pos += k;
      left -= k;
      if (left == 0 && closing) closed = true;
    }
    return pos;
  }

 private:
  // Reads the header at `pos` and writes the answer's; false if it has not wholly arrived.
  bool start_frame(const std::string& in, std::size_t& pos, std::string& out) {
    if (in.size() - pos < 2) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(in.data() + pos);
    const unsigned op = p[0] & 0x0f;
    const unsigned l7 = p[1] & 0x7fu;
    const std::size_t h = 2 + tether::ws::detail::extended_length_bytes(l7);
    if (in.size() - pos < h) return false;
    const std::uint64_t len = tether::ws::detail::payload_length(l7, p + 2);
    masked = (p[1] & 0x80) != 0;
    if (in.size() - pos < tether::ws::detail::header_bytes(p[1])) return false;
    if (masked) std::memcpy(mask, p + h, 4);
    pos += h + (masked ? 4 : 0);
    left = len;
    mask_at = 0;
    drop = op == 10;
    closing = op == 8;
    if (!drop) {
      out += static_cast<char>((p[0] & 0x80) | (op == 9 ? 10u : op));
      unsigned char field[9];
      out.append(reinterpret_cast<const char*>(field), tether::ws::detail::put_length(field, len, 0));
    }
    if (len == 0 && closing) closed = true;
    return true;
  }
};

template <class Stream>
asio::awaitable<void> echo_session(Stream s) {
  std::string in, out;
  std::vector<char> chunk(65536);
  // Handshake: read the request head, answer 101.
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), nothrow);
    if (ec) co_return;
    in.append(chunk.data(), n);
    if (in.find("\r\n\r\n") != std::string::npos) break;
    if (in.size() > 65536) co_return;
  }
  if (in.rfind(raw_preamble, 0) == 0) {
    // The ceiling's echo: bytes back as they come, nothing parsed.
    in.erase(0, raw_preamble.size());
    for (;;) {
      if (!in.empty()) {
        auto [wec, wn] = co_await asio::async_write(s, asio::buffer(in), nothrow);
        if (wec) co_return;
        in.clear();
      }
      auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), nothrow);
      if (ec) co_return;
      in.assign(chunk.data(), n);
    }
  }
  const auto end = in.find("\r\n\r\n");
  std::string lower = in.substr(0, end);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto kp = lower.find("sec-websocket-key:");
  if (kp == std::string::npos) co_return;
  kp += 18;
  while (in[kp] == ' ') ++kp;
  const std::string key = in.substr(kp, in.find("\r\n", kp) - kp);
  const std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: " + tether::ws::detail::key_rewriter::accept_for(key) + "\r\n\r\n";
  co_await asio::async_write(s, asio::buffer(resp), nothrow);
  in.erase(0, end + 4);
  frame_echo echo;
  for (;;) {
    const std::size_t used = echo.feed(in, out);
    in.erase(0, used);
    if (!out.empty()) {
      auto [wec, wn] = co_await asio::async_write(s, asio::buffer(out), nothrow);
      if (wec) co_return;
    }
    if (echo.closed) co_return;
    auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), nothrow);
    if (ec) co_return;
    in.append(chunk.data(), n);
  }
}

// ---------------------------------------------------------------------------------------
// Message `seq`: a fixed pattern (built once per size) with the sequence number in its first
// eight bytes, so that building and checking a message costs a copy and a compare, as in an
// application, not a loop per byte that would weigh on both clients alike.
const std::string& pattern_for(std::size_t size) {
  static std::string p;
  if (p.size() != size) {
    p.assign(size, '\0');
    for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<char>((i * 7 + 13) & 0xff);
  }
  return p;
}
std::string payload_for(std::size_t seq, std::size_t size) {
  std::string s = pattern_for(size);
  for (std::size_t i = 0; i < 8 && i < size; ++i) s[i] = static_cast<char>((seq >> (8 * i)) & 0xff);
  return s;
}
std::size_t seq_of(const std::string& s) {
  std::size_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) v |= std::size_t(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}

struct stats {
  double seconds = 0, connect_us = 0;
  std::vector<double> lat_us;
  bool ok = true;
  std::string error;
};

// The messages in flight, shared by both clients' send and receive loops.
struct flight {
  std::size_t sent = 0, got = 0, inflight = 0;
  std::vector<clk::time_point> t0;
  asio::steady_timer cv;
  explicit flight(const asio::any_io_executor& ex, std::size_t n) : t0(n), cv(ex, clk::time_point::max()) {}

  // Waits for a free slot, then returns the next sequence number (stamped now).
  asio::awaitable<std::size_t> next_slot(std::size_t max_inflight) {
    while (inflight >= max_inflight) co_await cv.async_wait(nothrow);
    const auto seq = sent++;
    ++inflight;
    t0[seq] = clk::now();
    co_return seq;
  }
  // Checks one echo and records its latency; false if it is not what was sent.
  bool arrived(const std::string& data, const args& a, stats& st) {
    const auto seq = data.size() >= 8 ? seq_of(data) : got;
    const auto& pat = pattern_for(a.size);
    const std::size_t head = std::min<std::size_t>(8, a.size);
    if (seq >= a.count || data.size() != a.size ||
        (data.size() < 8 && data != payload_for(seq, a.size)) ||
        data.compare(head, std::string::npos, pat, head, std::string::npos) != 0) {
      st.ok = false;
      st.error = "echo mismatch";
      return false;
    }
    st.lat_us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0[seq]).count());
    ++got;
    --inflight;
    cv.cancel();
    return true;
  }
};

asio::awaitable<void> run_tether(const args& a, stats& st) {
  auto ex = co_await asio::this_coro::executor;
  tether::ws::options o;
  o.url = a.url;
  o.reconnect.enabled = false;
  o.ping_interval = std::chrono::milliseconds(0);
  o.max_message_size = std::max<std::size_t>(a.size * 2, 1 << 20);
  o.outbox_max_messages = a.inflight + 16;
  o.outbox_max_bytes = (a.inflight + 16) * (a.size + 64);
  o.tls.ca_file = a.ca;
  o.tls.use_system_store = a.ca.empty();
  o.tls.insecure_skip_verify = a.insecure;
  const auto c0 = clk::now();
  tether::ws::client c(ex, o);
  // When run completes the client has wholly stopped; the end waits for it, so that with
  // --connects the next connect does not pay for this connection's end.
  struct run_state {
    explicit run_state(const asio::any_io_executor& e) : done(e, asio::steady_timer::time_point::max()) {}
    bool ended = false;
    asio::steady_timer done;
  };
  auto rs = std::make_shared<run_state>(ex);
  c.async_run([rs](error_code) {
    rs->ended = true;
    rs->done.cancel();
  });
  auto [ec, ev] = co_await c.async_next_event(nothrow);
  if (ec || !std::holds_alternative<tether::ws::connected>(ev)) {
    st.ok = false;
    st.error = "connect failed";
    co_return;
  }
  st.connect_us = std::chrono::duration<double, std::micro>(clk::now() - c0).count();
  flight f(ex, a.count);
  const auto start = clk::now();
  // Sender: keeps up to `inflight` messages outstanding.
  asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
    while (f.sent < a.count) {
      const auto seq = co_await f.next_slot(a.inflight);
      // Detached: no completion is made or run. The outbox holds every message in flight, so a
      // send fails only when the client ends, which the receive loop sees (disconnected).
      c.async_send_binary(payload_for(seq, a.size), asio::detached);
    }
  }, asio::detached);
  while (f.got < a.count && st.ok) {
    auto [e2, ev2] = co_await c.async_next_event(nothrow);
    if (e2) break;
    auto* m = std::get_if<tether::ws::message>(&ev2);
    if (!m) {
      if (std::holds_alternative<tether::ws::disconnected>(ev2)) break;
      continue;
    }
    if (m->is_text() || !f.arrived(m->data, a, st)) break;
  }
  st.seconds = std::chrono::duration<double>(clk::now() - start).count();
  if (f.got < a.count && st.ok) st.ok = false, st.error = "connection ended early";
  co_await c.async_close(nothrow);
  if (!rs->ended) co_await rs->done.async_wait(nothrow);
}

/// Resolves and connects `s` to the URL's host and port (both baselines); false on failure.
asio::awaitable<bool> connect_plain(const tether::net::endpoint_url& url, tcp::socket& s, stats& st) {
  tcp::resolver r(s.get_executor());
  // As tether does: an IP literal goes to connect without the resolver's thread.
  auto [rec, eps] = co_await tether::net::detail::resolve(r, url.host, url.port);
  error_code cec = rec;
  if (!rec) {
    auto [ec, ep] = co_await asio::async_connect(s, eps, nothrow);
    cec = ec;
  }
  if (cec) {
    st.ok = false;
    st.error = "connect failed: " + cec.message();
  }
  co_return !cec;
}

/// The baseline's exchange over an open websocket::stream (plain or TLS).
template <class WS>
asio::awaitable<void> beast_echo(WS& ws, const args& a, stats& st) {
  auto ex = co_await asio::this_coro::executor;
  ws.binary(true);
  ws.read_message_max(std::max<std::size_t>(a.size * 2, 1 << 20));
  flight f(ex, a.count);
  const auto start = clk::now();
  asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
    while (f.sent < a.count) {
      const auto seq = co_await f.next_slot(a.inflight);
      const std::string p = payload_for(seq, a.size);
      auto [e, n] = co_await ws.async_write(asio::buffer(p), nothrow);
      if (e) co_return;
    }
  }, asio::detached);
  beast::flat_buffer buf;
  while (f.got < a.count) {
    buf.clear();
    auto [e, n] = co_await ws.async_read(buf, nothrow);
    if (e) break;
    if (!f.arrived(beast::buffers_to_string(buf.data()), a, st)) break;
  }
  st.seconds = std::chrono::duration<double>(clk::now() - start).count();
  if (f.got < a.count && st.ok) st.ok = false, st.error = "connection ended early";
  co_await ws.async_close(websocket::close_code::normal, nothrow);
}

/// The upgrade on a connected websocket::stream, timed from `c0`; false on failure.
template <class WS>
asio::awaitable<bool> beast_upgrade(WS& ws, const tether::net::endpoint_url& url, clk::time_point c0, stats& st) {
  ws.write_buffer_bytes(64 * 1024);  // as a demanding Beast user sets it (default 4 KiB)
  const std::string host = url.host_header();
  auto [hec] = co_await ws.async_handshake(host, url.target, nothrow);
  if (hec) {
    st.ok = false;
    st.error = hec.message();
    co_return false;
  }
  st.connect_us = std::chrono::duration<double, std::micro>(clk::now() - c0).count();
  co_return true;
}

asio::awaitable<void> run_beast(const args& a, stats& st) {
  auto ex = co_await asio::this_coro::executor;
  auto url = tether::net::parse_url(a.url);
  const auto c0 = clk::now();
  if (!url->secure()) {
    websocket::stream<tcp::socket> ws(ex);
    if (!co_await connect_plain(*url, ws.next_layer(), st)) co_return;
    ws.next_layer().set_option(tcp::no_delay(true));
    if (co_await beast_upgrade(ws, *url, c0, st)) co_await beast_echo(ws, a, st);
    co_return;
  }
  auto ctx = client_tls_context(a);
  websocket::stream<asio::ssl::stream<tcp::socket>> ws(ex, ctx);
  auto& sock = beast::get_lowest_layer(ws);
  if (!co_await connect_plain(*url, sock, st)) co_return;
  sock.set_option(tcp::no_delay(true));
  prepare_tls(ws.next_layer(), url->host, a);
  auto [tec] = co_await ws.next_layer().async_handshake(asio::ssl::stream_base::client, nothrow);
  if (tec) {
    st.ok = false;
    st.error = "TLS: " + tec.message();
    co_return;
  }
  if (co_await beast_upgrade(ws, *url, c0, st)) co_await beast_echo(ws, a, st);
}

/// Resolves and connects the tcp_stream `s` within `limit` (Beast's way of bounding a connect).
asio::awaitable<bool> connect_bounded(const tether::net::endpoint_url& url, beast::tcp_stream& s,
                                      std::chrono::seconds limit, stats& st) {
  tcp::resolver r(s.get_executor());
  auto [rec, eps] = co_await tether::net::detail::resolve(r, url.host, url.port);
  error_code cec = rec;
  if (!rec) {
    s.expires_after(limit);
    auto [ec, ep] = co_await s.async_connect(eps, nothrow);
    cec = ec;
  }
  if (cec) {
    st.ok = false;
    st.error = "connect failed: " + cec.message();
  }
  co_return !cec;
}

/// --client beast-timeouts: the baseline with the timeouts tether has, as Beast's own client
/// examples set them: beast::tcp_stream with 30 s for the connect (and the TLS handshake), then
/// no expiry on the stream and websocket::stream_base::timeout::suggested (30 s for the upgrade
/// and the close, no idle timeout).
asio::awaitable<void> run_beast_timeouts(const args& a, stats& st) {
  constexpr std::chrono::seconds limit(30);
  auto ex = co_await asio::this_coro::executor;
  auto url = tether::net::parse_url(a.url);
  const auto c0 = clk::now();
  const auto suggested = websocket::stream_base::timeout::suggested(beast::role_type::client);
  if (!url->secure()) {
    websocket::stream<beast::tcp_stream> ws(ex);
    auto& ts = beast::get_lowest_layer(ws);
    if (!co_await connect_bounded(*url, ts, limit, st)) co_return;
    ts.socket().set_option(tcp::no_delay(true));
    ts.expires_never();
    ws.set_option(suggested);
    if (co_await beast_upgrade(ws, *url, c0, st)) co_await beast_echo(ws, a, st);
    co_return;
  }
  auto ctx = client_tls_context(a);
  websocket::stream<asio::ssl::stream<beast::tcp_stream>> ws(ex, ctx);
  auto& ts = beast::get_lowest_layer(ws);
  if (!co_await connect_bounded(*url, ts, limit, st)) co_return;
  ts.socket().set_option(tcp::no_delay(true));
  prepare_tls(ws.next_layer(), url->host, a);
  ts.expires_after(limit);
  auto [tec] = co_await ws.next_layer().async_handshake(asio::ssl::stream_base::client, nothrow);
  if (tec) {
    st.ok = false;
    st.error = "TLS: " + tec.message();
    co_return;
  }
  ts.expires_never();
  ws.set_option(suggested);
  if (co_await beast_upgrade(ws, *url, c0, st)) co_await beast_echo(ws, a, st);
}

/// The ceiling: the same messages as raw bytes through the server's raw echo, with the same
/// window of K in flight, written as the best raw-socket program would (every message the
/// window allows in one write) and read in 256 KiB pieces; each echo is checked like the others.
template <class Stream>
asio::awaitable<void> raw_echo(Stream& s, const args& a, stats& st, clk::time_point c0) {
  auto ex = co_await asio::this_coro::executor;
  auto [pec, pn] = co_await asio::async_write(s, asio::buffer(raw_preamble), nothrow);
  if (pec) {
    st.ok = false;
    st.error = pec.message();
    co_return;
  }
  st.connect_us = std::chrono::duration<double, std::micro>(clk::now() - c0).count();
  flight f(ex, a.count);
  const auto start = clk::now();
  asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
    std::string batch;
    while (f.sent < a.count) {
      batch.clear();
      while (f.sent < a.count && (batch.empty() || f.inflight < a.inflight)) {
        const auto seq = co_await f.next_slot(a.inflight);
        batch += payload_for(seq, a.size);
      }
      auto [e, n] = co_await asio::async_write(s, asio::buffer(batch), nothrow);
      if (e) co_return;
    }
  }, asio::detached);
  std::vector<char> chunk(std::size_t{256} * 1024);
  std::string in, echo;
  while (f.got < a.count && st.ok) {
    auto [e, n] = co_await s.async_read_some(asio::buffer(chunk), nothrow);
    if (e) break;
    in.append(chunk.data(), n);
    std::size_t pos = 0;
    for (; in.size() - pos >= a.size; pos += a.size) {
      echo.assign(in, pos, a.size);
      if (!f.arrived(echo, a, st)) break;
    }
    in.erase(0, pos);
  }
  st.seconds = std::chrono::duration<double>(clk::now() - start).count();
  if (f.got < a.count && st.ok) st.ok = false, st.error = "connection ended early";
}

asio::awaitable<void> run_tcp(const args& a, stats& st) {
  auto ex = co_await asio::this_coro::executor;
  auto url = tether::net::parse_url(a.url);
  const auto c0 = clk::now();
  tcp::socket s(ex);
  if (!co_await connect_plain(*url, s, st)) co_return;
  s.set_option(tcp::no_delay(true));
  if (!url->secure()) {
    co_await raw_echo(s, a, st, c0);
  } else {
    auto ctx = client_tls_context(a);
    asio::ssl::stream<tcp::socket&> t(s, ctx);
    prepare_tls(t, url->host, a);
    auto [tec] = co_await t.async_handshake(asio::ssl::stream_base::client, nothrow);
    if (tec) {
      st.ok = false;
      st.error = "TLS: " + tec.message();
      co_return;
    }
    co_await raw_echo(t, a, st, c0);
  }
  error_code ig;
  s.shutdown(tcp::socket::shutdown_both, ig);
}

/// This process's CPU time (user + system) in microseconds.
double cpu_us() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  return us(u.ru_utime) + us(u.ru_stime);
}

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if absent.
long status_kib(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const auto prefix = field + ":";
  while (std::getline(f, line))
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  return -1;
}

/// The peak resident memory of this process in KiB. VmHWM, not getrusage's ru_maxrss: Linux
/// carries ru_maxrss over execve, so a client started by a Python driver would report the
/// driver's (larger) peak instead of its own.
long peak_rss_kib() { return status_kib("VmHWM"); }

/// VmRSS of this process in KiB.
long rss_kib() { return status_kib("VmRSS"); }

tether::ws::options idle_options(const args& a) {
  tether::ws::options o;
  o.url = a.url;
  o.reconnect.enabled = false;
  return o;
}

/// Opens `n` tether clients and waits until each is connected; false if one is not.
asio::awaitable<bool> open_tether(const args& a, std::size_t n, std::vector<std::unique_ptr<tether::ws::client>>& out) {
  auto ex = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::make_unique<tether::ws::client>(ex, idle_options(a)));
    out.back()->async_run([](error_code) {});
    auto [ec, ev] = co_await out.back()->async_next_event(nothrow);
    if (ec || !std::holds_alternative<tether::ws::connected>(ev)) co_return false;
  }
  co_return true;
}

struct beast_idle {
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer buf;
  explicit beast_idle(const asio::any_io_executor& ex) : ws(ex) {}
};

asio::awaitable<bool> open_beast(const args& a, std::size_t n, std::vector<std::unique_ptr<beast_idle>>& out) {
  auto ex = co_await asio::this_coro::executor;
  auto url = tether::net::parse_url(a.url);
  tcp::resolver r(ex);
  auto [rec, eps] = co_await tether::net::detail::resolve(r, url->host, url->port);
  if (rec) co_return false;
  const std::string host = url->host_header();
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::make_unique<beast_idle>(ex));
    auto& c = *out.back();
    auto [cec, ep] = co_await asio::async_connect(c.ws.next_layer(), eps, nothrow);
    if (cec) co_return false;
    auto [hec] = co_await c.ws.async_handshake(host, url->target, nothrow);
    if (hec) co_return false;
    c.ws.async_read(c.buf, [](error_code, std::size_t) {});
  }
  co_return true;
}

/// --idle: resident memory per idle connection above the baseline.
int run_idle(const args& a) {
  asio::io_context ioc(a.io_hint);
  long baseline = 0, loaded = 0;
  bool ok = false;
  asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
    // Warm up: one connection opened and closed, so one-time costs land in the baseline.
    if (a.client == "tether") {
      {
        std::vector<std::unique_ptr<tether::ws::client>> warm;
        if (!co_await open_tether(a, 1, warm)) co_return;
        co_await warm[0]->async_close(nothrow);
      }
      baseline = rss_kib();
      std::vector<std::unique_ptr<tether::ws::client>> conns;
      conns.reserve(a.idle);
      ok = co_await open_tether(a, a.idle, conns);
      loaded = rss_kib();
      for (auto& c : conns) c->close();
    } else {
      {
        std::vector<std::unique_ptr<beast_idle>> warm;
        if (!co_await open_beast(a, 1, warm)) co_return;
        warm[0]->ws.next_layer().close();
      }
      baseline = rss_kib();
      std::vector<std::unique_ptr<beast_idle>> conns;
      conns.reserve(a.idle);
      ok = co_await open_beast(a, a.idle, conns);
      loaded = rss_kib();
      for (auto& c : conns) c->ws.next_layer().close();
    }
  }, [&](const std::exception_ptr& e) {
    if (e) ok = false;
  });
  ioc.run_for(std::chrono::seconds(120));
  if (!ok) {
    std::cerr << "ws_echo_bench: could not open " << a.idle << " connections\n";
    return 1;
  }
  std::printf("{\"client\":\"%s\",\"idle_connections\":%zu,\"baseline_kib\":%ld,\"rss_kib\":%ld,"
              "\"per_connection_kib\":%.1f}\n",
              a.client.c_str(), a.idle, baseline, loaded,
              static_cast<double>(loaded - baseline) / static_cast<double>(a.idle));
  return 0;
}

/// One accepted connection: the TLS handshake first when the server has a context.
asio::awaitable<void> accepted(tcp::socket s, std::shared_ptr<asio::ssl::context> tls) {
  if (!tls) {
    co_await echo_session(std::move(s));
    co_return;
  }
  asio::ssl::stream<tcp::socket> t(std::move(s), *tls);
  auto [ec] = co_await t.async_handshake(asio::ssl::stream_base::server, nothrow);
  if (!ec) co_await echo_session(std::move(t));
}

/// Runs the built-in echo server on `acc` (TLS with `tls`) until the process ends.
void serve(asio::io_context& ioc, tcp::acceptor& acc, const std::shared_ptr<asio::ssl::context>& tls) {
  asio::co_spawn(ioc, [&ioc, &acc, tls]() -> asio::awaitable<void> {
    for (;;) {
      auto [ec, s] = co_await acc.async_accept(nothrow);
      if (ec) co_return;
      s.set_option(tcp::no_delay(true));
      asio::co_spawn(ioc, accepted(std::move(s), tls), asio::detached);
    }
  }, asio::detached);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--insecure") {
      a.insecure = true;
      continue;
    }
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!v) {
      std::cerr << "missing value for " << k << '\n';
      return 1;
    }
    ++i;
    try {
      if (k == "--url") a.url = v;
      else if (k == "--size") a.size = std::stoul(v);
      else if (k == "--count") a.count = std::stoul(v);
      else if (k == "--inflight") a.inflight = std::max<std::size_t>(1, std::stoul(v));
      else if (k == "--client") a.client = v;
      else if (k == "--idle") a.idle = std::stoul(v);
      else if (k == "--serve") a.serve = std::stol(v);
      else if (k == "--connects") a.connects = std::stoul(v);
      else if (k == "--connects-fresh") a.connects = std::stoul(v), a.connects_fresh = true;
      else if (k == "--connections") a.connections = std::max<std::size_t>(1, std::stoul(v));
      else if (k == "--tls-cert") a.tls_cert = v;
      else if (k == "--tls-key") a.tls_key = v;
      else if (k == "--ca") a.ca = v;
      else if (k == "--io-hint" && (std::string_view(v) == "1" || std::string_view(v) == "unsafe-io"))
        a.io_hint = std::string_view(v) == "1" ? 1 : BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;
      else throw std::invalid_argument(k);
    } catch (const std::exception&) {
      std::cerr << "usage: ws_echo_bench [--url ws://HOST:PORT/] --size BYTES --count N --inflight K [--client tether|beast|beast-timeouts|tcp] [--connections C]\n"
                   "       ws_echo_bench [--url ws://HOST:PORT/] --idle N [--client tether|beast]\n"
                   "       ws_echo_bench [--url ws://HOST:PORT/] --connects N|--connects-fresh N [--client tether|beast|beast-timeouts]\n"
                   "       ws_echo_bench --serve PORT\n"
                   "  TLS: [--tls-cert FILE --tls-key FILE] (the server) [--ca FILE] [--insecure] (the clients)\n"
                   "  [--io-hint 1|unsafe-io]: the clients' io_context concurrency hint (default 1)\n";
      return 1;
    }
  }
  if (a.tls_cert.empty() != a.tls_key.empty()) {
    std::cerr << "--tls-cert and --tls-key go together\n";
    return 1;
  }
  if (a.idle && (!a.tls_cert.empty() || a.url.rfind("wss:", 0) == 0)) {
    std::cerr << "--idle measures ws:// connections only\n";
    return 1;
  }
  std::shared_ptr<asio::ssl::context> server_tls;
  try {
    server_tls = server_tls_context(a);
  } catch (const std::exception& e) {
    std::cerr << "--tls-cert/--tls-key: " << e.what() << '\n';
    return 1;
  }
  if (a.client != "tether" && a.client != "beast" && a.client != "beast-timeouts" && a.client != "tcp") {
    std::cerr << "--client is tether, beast, beast-timeouts or tcp\n";
    return 1;
  }
  if (a.serve >= 0) {
    asio::io_context server_ioc(1);
    tcp::acceptor acc(server_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(a.serve)));
    std::cout << acc.local_endpoint().port() << std::endl;
    serve(server_ioc, acc, server_tls);
    server_ioc.run();
    return 0;
  }
  if (a.url.empty() && a.idle) {
    // The server in a child process (it dies with us), so only the client side is measured.
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    const pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      asio::io_context server_ioc(1);
      tcp::acceptor acc(server_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      const std::uint16_t port = acc.local_endpoint().port();
      if (::write(fds[1], &port, sizeof port) != sizeof port) ::_exit(1);
      serve(server_ioc, acc, nullptr);
      server_ioc.run();
      ::_exit(0);
    }
    std::uint16_t port = 0;
    if (child < 0 || ::read(fds[0], &port, sizeof port) != sizeof port) return 1;
    a.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
    const int rc = run_idle(a);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return rc;
  }
  if (a.idle) return run_idle(a);
  asio::io_context server_ioc;
  std::thread server_thread;
  std::optional<tcp::acceptor> acc;
  if (a.url.empty()) {
    acc.emplace(server_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    a.url = std::string(server_tls ? "wss" : "ws") + "://127.0.0.1:" + std::to_string(acc->local_endpoint().port()) + "/";
    serve(server_ioc, *acc, server_tls);
    server_thread = std::thread([&] { server_ioc.run(); });
  }
  if (a.connects) {
    args one = a;
    one.size = 16;
    one.count = 1;
    one.inflight = 1;
    std::vector<double> times;
    auto one_client = [&](stats& cst) {
      return a.client == "tether"           ? run_tether(one, cst)
             : a.client == "beast-timeouts" ? run_beast_timeouts(one, cst)
                                            : run_beast(one, cst);
    };
    std::string failed;
    if (a.connects_fresh) {
      for (std::size_t i = 0; i < a.connects && failed.empty(); ++i) {
        asio::io_context cioc(a.io_hint);
        stats cst;
        asio::co_spawn(cioc, one_client(cst), asio::detached);
        cioc.run();
        if (!cst.ok) failed = cst.error;
        times.push_back(cst.connect_us);
      }
    } else {
      asio::io_context cioc(a.io_hint);
      asio::co_spawn(cioc, [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < a.connects; ++i) {
          stats cst;
          co_await one_client(cst);
          if (!cst.ok) {
            failed = cst.error;
            co_return;
          }
          times.push_back(cst.connect_us);
        }
      }, asio::detached);
      cioc.run();
    }
    if (!failed.empty()) {
      std::cerr << "ws_echo_bench: " << failed << '\n';
      return 1;
    }
    const double first = times.front();
    times.erase(times.begin());
    std::printf("{\"client\":\"%s\",\"connects\":%zu,\"first_connect_us\":%.1f,\"median_connect_us\":%.1f}\n",
                a.client.c_str(), a.connects, first, percentile(times, 0.5));
    if (server_thread.joinable()) {
      server_ioc.stop();
      server_thread.join();
    }
    return 0;
  }
  asio::io_context ioc(a.io_hint);
  // --connections N: N clients at once on this thread, the messages shared out among them.
  std::vector<stats> each(a.connections);
  args per = a;
  per.count = std::max<std::size_t>(1, a.count / a.connections);
  const double cpu0 = cpu_us();
  for (auto& one : each) {
    auto client = a.client == "tether"           ? run_tether(per, one)
                  : a.client == "beast"          ? run_beast(per, one)
                  : a.client == "beast-timeouts" ? run_beast_timeouts(per, one)
                                                 : run_tcp(per, one);
    asio::co_spawn(ioc, std::move(client), [&one](const std::exception_ptr& e) {
      if (e) one.ok = false, one.error = "exception";
    });
  }
  ioc.run();
  const double cpu = cpu_us() - cpu0;
  stats st;
  std::vector<double> connects;
  for (auto& one : each) {
    if (!one.ok && st.ok) st.ok = false, st.error = one.error;
    st.seconds = std::max(st.seconds, one.seconds);
    st.lat_us.insert(st.lat_us.end(), one.lat_us.begin(), one.lat_us.end());
    connects.push_back(one.connect_us);
  }
  st.connect_us = percentile(connects, 0.5);
  a.count = per.count * a.connections;
  if (server_thread.joinable()) {
    server_ioc.stop();
    server_thread.join();
  }
  if (!st.ok) {
    std::cerr << "ws_echo_bench: " << st.error << '\n';
    return 1;
  }
  const double mps = st.seconds > 0 ? static_cast<double>(a.count) / st.seconds : 0;
  std::printf(
      "{\"client\":\"%s\",\"connections\":%zu,\"size\":%zu,\"count\":%zu,\"inflight\":%zu,\"seconds\":%.6f,"
      "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"connect_us\":%.1f,"
      "\"cpu_us_per_msg\":%.3f,\"peak_rss_kib\":%ld}\n",
      a.client.c_str(), a.connections, a.size, a.count, a.inflight, st.seconds, mps,
      mps * static_cast<double>(a.size) / 1e6,
      percentile(st.lat_us, 0.5), percentile(st.lat_us, 0.99), st.connect_us, cpu / static_cast<double>(a.count),
      peak_rss_kib());
  return 0;
}
