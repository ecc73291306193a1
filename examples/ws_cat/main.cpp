// tether-ws: a small wscat/websocat. Each stdin line goes out as a text message; each text
// message received is printed as one line on stdout; connection state goes to stderr as
// lines beginning with "# ". `tether-ws --help` says everything a user needs (usage()).
#include <tether/net/url.hpp>
#include <tether/version.hpp>
#include <tether/ws.hpp>

#include "../network_flags.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

namespace {

namespace ws = tether::ws;
using std::chrono::milliseconds;

constexpr const char* help_text = R"(usage: tether-ws URL [OPTIONS]

Sends each line of stdin as a WebSocket text message and prints each text message
received as one line on stdout (flushed per line). Connection state goes to stderr as
lines beginning with "# ":
  # connected subprotocol=P
  # disconnected code=C reason=R [error=...]
  # reconnecting attempt=N delay_ms=D cause=...
  # binary N bytes                 (a binary message, not printed)
  # unconfirmed N                  (see DELIVERY)
  # not sent N                     (lines that never went out)
At the end of stdin it closes normally (code 1000), prints what the server sends until
its own Close (bounded by the close timeout), and exits.

URL is ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH.

OPTIONS
  --header 'Name: value'  add a header to the handshake request (repeatable)
  --subprotocol P         offer subprotocol P (repeatable, in order of preference)
  --ca FILE               also trust the CA certificates in FILE (PEM)
  --insecure              do not verify the server's certificate or host name (testing only)
  --proxy URL             connect through this proxy: http://[user:pass@]HOST[:PORT]
                          (CONNECT), https://... (CONNECT over TLS, verified with --ca and
                          the system store; port 443), socks5://... (names resolved here) or
                          socks5h://... (names resolved by the proxy); the default port is
                          1080. Without it the proxy comes from the environment as curl
                          reads it (ws_proxy/wss_proxy, http_proxy, https_proxy, all_proxy,
                          no_proxy);
                          --proxy '' connects directly
  --pin sha256//BASE64    also require this public key (SHA-256 of the certificate's
                          SubjectPublicKeyInfo) in the verified chain; repeat for backups
  --reconnect             reconnect with backoff (0.5 s doubling to 30 s, with jitter) when
                          the connection fails or drops; lines typed meanwhile wait (at most
                          1024 lines or 16 MiB) and go out on the next connection
  --ping-interval S       seconds between keep-alive pings (default 20; 0: no pings)
  --pong-timeout S        seconds without any answer after a ping before the connection
                          counts as dead (default 10)
  --close-timeout S       seconds to wait for the server's Close after ours (default 5)
  -h, --help              print this help on stdout and exit 0
  --version               print the version and exit 0
  (S: a number of seconds, fractions allowed, 0 to 86400.)

DELIVERY
  WebSocket has no receipts: a line written to a connection that then fails may or may not
  have reached the server (at most once). tether-ws confirms lines with its own pings (the
  server's pong proves it received everything written before the ping) and, when a
  connection fails, prints "# unconfirmed N" for the lines written to it that no pong
  confirmed. A clean close confirms everything. Lines that were never written (the client
  closed or gave up first) are counted in "# not sent N".

EXIT STATUS
  0  stdin ended and every line was written (a session that connected at least once)
  1  bad usage; the connection could not be made or was refused (the error on stderr);
     the connection failed and reconnection was off; stdin ended before any connection;
     or some lines were not sent
)";

int usage_error(const std::string& why) {
  std::cerr << "tether-ws: " << why << "\n" << "Try 'tether-ws --help' for more information.\n";
  return 1;
}

std::optional<milliseconds> parse_seconds(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno != 0 || !(v >= 0 && v <= 86400)) return std::nullopt;
  return milliseconds(static_cast<long long>(v * 1000));
}

/// One clear sentence for what went wrong, naming where.
std::string describe(const tether::error_code& ec, unsigned http_status, const tether::ws::options& o) {
  const std::string& url = o.url;
  if (ec == tether::error::handshake_rejected && http_status) {
    const auto status = "HTTP " + std::to_string(http_status);
    if (http_status < 400) return "not a WebSocket endpoint: " + status + " (the server did not upgrade the connection)";
    return "the server rejected the WebSocket handshake: " + status;
  }
  const auto parsed = tether::net::parse_url(url);
  auto where = [&] {
    if (!parsed) return url;
    const auto hostport = parsed->host + ":" + std::to_string(parsed->port);
    const auto proxy = tether_examples::proxy_in_use(o.proxy, *parsed);
    return proxy.empty() ? hostport : "proxy " + proxy + " (for " + hostport + ")";
  };
  if (parsed) {
    if (auto s = tether_examples::describe_network_failure(ec, o.proxy, *parsed); !s.empty()) return s;
  }
  if (tether::is_tls_hostname_mismatch(ec))
    return ec.message() + ": the certificate does not name " + where() +
           " (connect by a name it was issued for; --insecure skips the check, for testing only)";
  if (ec.category() == tether::tls_verify_category())
    return ec.message() + " (the server's certificate does not chain to a trusted CA: if you trust it, pass its CA with --ca FILE)";
  namespace ae = boost::asio::error;
  if (ec == ae::connection_refused || ec == ae::host_unreachable || ec == ae::network_unreachable ||
      ec == ae::host_not_found || ec == ae::host_not_found_try_again || ec == ae::timed_out ||
      ec == tether::error::connect_timeout)
    return "cannot connect to " + where() + ": " + ec.message();
  return ec.message();
}

/// Lines from stdin and what became of them. Guarded by `mu`.
struct session {
  std::mutex mu;
  std::condition_variable cv;
  // lines
  int pending = 0;               ///< sends not completed yet
  std::uint64_t written = 0;     ///< lines written to the current connection
  std::uint64_t confirmed = 0;   ///< of which a pong confirmed (or a clean close)
  std::uint64_t not_sent = 0;    ///< never written: aborted, expired, outbox full
  bool ping_out = false;         ///< our confirming ping awaits its pong
  // connection
  bool open = false;
  bool ever_open = false;
  bool down = false;       ///< an attempt failed and no connection opened since
  bool run_done = false;
  bool events_done = false;
  bool eof = false;
  tether::error_code run_error, last_error;
  unsigned last_status = 0;
};

}  // namespace

int main(int argc, char** argv) {
  ws::options o;
  o.reconnect.enabled = false;
  o.pong_events = true;  // our pings confirm lines (see DELIVERY)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "--header" || a == "--subprotocol" || a == "--ca" || a == "--ping-interval" || a == "--pong-timeout" ||
        a == "--close-timeout" || a == "--proxy" || a == "--pin") {
      const auto v = value();
      if (!v) return usage_error(a + " needs a value");
      if (a == "--header") {
        const auto colon = v->find(':');
        if (colon == std::string::npos || colon == 0)
          return usage_error("--header '" + *v + "': expected 'Name: value'");
        auto val = v->substr(colon + 1);
        while (!val.empty() && val.front() == ' ') val.erase(0, 1);
        o.headers.emplace_back(v->substr(0, colon), val);
      } else if (a == "--subprotocol") {
        o.subprotocols.push_back(*v);
      } else if (a == "--proxy") {
        if (auto e = tether_examples::apply_proxy_flag(o.proxy, *v); !e.empty()) return usage_error(e);
      } else if (a == "--pin") {
        if (auto e = tether_examples::apply_pin_flag(o.tls, *v); !e.empty()) return usage_error(e);
      } else if (a == "--ca") {
        if (std::ifstream probe(*v); !probe) return usage_error("--ca " + *v + ": " + std::error_code(errno, std::generic_category()).message());
        o.tls.ca_file = *v;
      } else {
        const auto s = parse_seconds(*v);
        if (!s) return usage_error(a + " '" + *v + "': expected a number of seconds from 0 to 86400");
        (a == "--ping-interval" ? o.ping_interval : a == "--pong-timeout" ? o.pong_timeout : o.close_timeout) = *s;
      }
    } else if (a == "--insecure") {
      o.tls.insecure_skip_verify = true;
    } else if (a == "--reconnect") {
      o.reconnect.enabled = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << help_text;
      return 0;
    } else if (a == "--version") {
      std::cout << "tether-ws " TETHER_VERSION_STRING "\n";
      return 0;
    } else if (o.url.empty() && (a.empty() || a[0] != '-')) {
      o.url = a;
    } else {
      return usage_error(a[0] == '-' ? "unknown option '" + a + "'" : "unexpected argument '" + a + "'");
    }
  }
  if (o.url.empty()) return usage_error("no URL");
  if (auto p = tether::net::parse_url(o.url); !p || (p->scheme != tether::net::scheme::ws && p->scheme != tether::net::scheme::wss))
    return usage_error("'" + o.url + "' is not a ws:// or wss:// URL");
  o.log = {[](tether::net::log_level, std::string_view line) { std::cerr << "# log " << line << '\n'; },
           tether::net::log_level::warn};

  boost::asio::io_context ioc;
  ws::client client(ioc.get_executor(), o);
  session st;

  client.async_run([&](tether::error_code ec) {
    std::lock_guard lk(st.mu);
    st.run_done = true;
    st.run_error = ec;
    st.cv.notify_all();
  });

  // Lines written and not confirmed when a connection fails (call with the lock held).
  auto settle_connection = [&st](bool clean) {
    if (clean) st.confirmed = st.written;
    if (st.written > st.confirmed) std::fprintf(stderr, "# unconfirmed %llu\n", static_cast<unsigned long long>(st.written - st.confirmed));
    st.written = st.confirmed = 0;
    st.ping_out = false;
  };
  // After a line is written, a ping whose pong confirms it (one in flight at a time).
  auto confirm_later = [&client, &st] {
    if (st.ping_out || st.confirmed == st.written || !st.open) return;
    st.ping_out = true;
    client.async_ping(std::to_string(st.written), [&st](tether::error_code ec) {
      if (!ec) return;
      std::lock_guard lk(st.mu);
      st.ping_out = false;
    });
  };

  std::function<void()> pull;
  pull = [&] {
    client.async_next_event([&](tether::error_code ec, ws::event ev) {
      if (ec) {  // client_closed: every event was delivered
        std::lock_guard lk(st.mu);
        st.events_done = true;
        st.cv.notify_all();
        return;
      }
      if (auto* m = std::get_if<ws::message>(&ev)) {
        if (m->is_text()) {
          std::fwrite(m->data.data(), 1, m->data.size(), stdout);
          std::fputc('\n', stdout);
          std::fflush(stdout);
        } else {
          std::fprintf(stderr, "# binary %zu bytes\n", m->data.size());
        }
        return pull();
      }
      std::unique_lock lk(st.mu);
      if (auto* c = std::get_if<ws::connected>(&ev)) {
        std::fprintf(stderr, "# connected subprotocol=%s\n", c->subprotocol.c_str());
        st.open = st.ever_open = true;
        st.down = false;
        confirm_later();
      } else if (auto* p = std::get_if<ws::pong>(&ev)) {
        char* end = nullptr;
        const auto n = std::strtoull(p->payload.c_str(), &end, 10);
        if (!p->payload.empty() && *end == '\0' && n <= st.written) {
          st.confirmed = std::max<std::uint64_t>(st.confirmed, n);
          st.ping_out = false;
          confirm_later();
        }
      } else if (auto* d = std::get_if<ws::disconnected>(&ev)) {
        if (st.open || !d->error)
          std::fprintf(stderr, "# disconnected code=%u reason=%s%s%s\n", d->code, d->reason.c_str(),
                       d->error ? " error=" : "", d->error ? describe(d->error, d->http_status, o).c_str() : "");
        settle_connection(!d->error);
        st.open = false;
        if (d->error) {
          st.last_error = d->error;
          st.last_status = d->http_status;
        }
      } else if (auto* r = std::get_if<ws::reconnecting>(&ev)) {
        if (st.open) settle_connection(false);
        const auto cause = r->cause == tether::error::closed_by_server
                               ? "closed by server: " + std::to_string(r->close_code)
                               : describe(r->cause, r->http_status, o);
        std::fprintf(stderr, "# reconnecting attempt=%u delay_ms=%lld cause=%s\n", r->attempt,
                     static_cast<long long>(r->delay.count()), cause.c_str());
        st.open = false;
        st.down = true;
        st.last_error = r->cause;
        st.last_status = r->http_status;
      }
      st.cv.notify_all();
      lk.unlock();
      pull();
    });
  };
  pull();
  std::thread io([&] { ioc.run(); });

  // stdin: one text message per line, read on its own thread so that a connection that
  // ends by itself (e.g. refused) ends the program even while stdin stays open.
  std::thread input([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      {
        std::lock_guard lk(st.mu);
        if (st.run_done) {  // the session is over: what is still typed is counted, not sent
          ++st.not_sent;
          continue;
        }
        ++st.pending;
      }
      client.async_send_text(line, [&](tether::error_code ec) {
        std::lock_guard lk(st.mu);
        --st.pending;
        if (!ec) {
          ++st.written;
          confirm_later();
        } else if (ec == boost::asio::error::operation_aborted || ec == tether::error::expired ||
                   ec == tether::error::outbox_full) {
          ++st.not_sent;
        } else {
          ++st.written;  // the socket failed while writing it: it may have arrived
        }
        st.cv.notify_all();
      });
    }
    std::lock_guard lk(st.mu);
    st.eof = true;
    st.cv.notify_all();
  });
  input.detach();

  {
    std::unique_lock lk(st.mu);
    st.cv.wait(lk, [&] { return st.eof || st.run_done; });
    // The first connection attempt decides whether there is anything to close.
    st.cv.wait(lk, [&] { return st.open || st.down || st.run_done; });
    // What was typed goes out before the close, while a connection is open (the client's own
    // state: its `connected` event may still be on its way). Bounded: a dead link fails the
    // sends within the pong timeout; lines still queued then are counted as not sent.
    auto open = [&] { return st.open || client.state() == ws::connection_state::open; };
    st.cv.wait_for(lk, std::chrono::seconds(30), [&] { return st.pending == 0 || !open() || st.run_done; });
  }
  client.close(1000, "");
  {
    std::unique_lock lk(st.mu);
    st.cv.wait(lk, [&] { return st.run_done && st.events_done; });
    // Lines already waiting on a closed stdin are counted before the summary (bounded: an
    // open terminal or pipe is not waited for).
    st.cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return st.eof; });
  }
  ioc.stop();
  io.join();

  std::lock_guard lk(st.mu);
  if (st.not_sent) std::fprintf(stderr, "# not sent %llu\n", static_cast<unsigned long long>(st.not_sent));
  if (st.run_error) {
    std::cerr << "tether-ws: " << describe(st.run_error, st.last_status, o) << '\n';
    return 1;
  }
  if (!st.ever_open) {
    std::cerr << "tether-ws: stdin ended before any connection was made"
              << (st.last_error ? ": " + describe(st.last_error, st.last_status, o) : std::string()) << '\n';
    return 1;
  }
  return st.not_sent ? 1 : 0;
}
