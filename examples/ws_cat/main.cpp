// tether-ws: a small wscat/websocat. Each stdin line goes out as a text message; each text
// message received is printed as one line on stdout; connection state goes to stderr as
// lines beginning with "# ".
//
//   tether-ws URL [--header 'K: V']... [--subprotocol P]... [--ca FILE] [--insecure]
//             [--reconnect] [--ping-interval S] [--pong-timeout S]
//
// At end of stdin it closes normally (1000) and exits 0; a connection that fails (and is
// not retried) exits 1 with the error on stderr; bad usage exits 2.
#include <tether/ws.hpp>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <variant>

namespace {

void usage() {
  std::cerr << "usage: tether-ws URL [--header 'K: V']... [--subprotocol P]... [--ca FILE] [--insecure]\n"
               "                 [--reconnect] [--ping-interval S] [--pong-timeout S]\n";
}

bool parse_seconds(const char* s, std::chrono::milliseconds& out) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || v < 0 || v > 86400) return false;
  out = std::chrono::milliseconds(static_cast<long long>(v * 1000));
  return true;
}

struct shared_state {
  std::mutex mu;
  std::condition_variable cv;
  int pending_sends = 0;
  bool run_done = false;
  tether::error_code run_error;
};

}  // namespace

int main(int argc, char** argv) {
  tether::ws::options o;
  o.reconnect.enabled = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--header") {
      const char* v = next();
      const std::string h = v ? v : "";
      const auto colon = h.find(':');
      if (!v || colon == std::string::npos || colon == 0) return usage(), 2;
      auto value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      o.headers.emplace_back(h.substr(0, colon), value);
    } else if (a == "--subprotocol") {
      const char* v = next();
      if (!v) return usage(), 2;
      o.subprotocols.emplace_back(v);
    } else if (a == "--ca") {
      const char* v = next();
      if (!v) return usage(), 2;
      o.tls.ca_file = v;
    } else if (a == "--insecure") {
      o.tls.insecure_skip_verify = true;
    } else if (a == "--reconnect") {
      o.reconnect.enabled = true;
    } else if (a == "--ping-interval") {
      const char* v = next();
      if (!v || !parse_seconds(v, o.ping_interval)) return usage(), 2;
    } else if (a == "--pong-timeout") {
      const char* v = next();
      if (!v || !parse_seconds(v, o.pong_timeout)) return usage(), 2;
    } else if (a == "-h" || a == "--help") {
      return usage(), 0;
    } else if (o.url.empty() && a.rfind("--", 0) != 0) {
      o.url = a;
    } else {
      std::cerr << "tether-ws: unknown argument '" << a << "'\n";
      return usage(), 2;
    }
  }
  if (o.url.empty()) return usage(), 2;
  o.log = {[](tether::net::log_level, std::string_view line) { std::cerr << "# log " << line << '\n'; },
           tether::net::log_level::warn};

  boost::asio::io_context ioc;
  tether::ws::client client(ioc.get_executor(), o);
  shared_state st;

  client.async_run([&](tether::error_code ec) {
    std::lock_guard lk(st.mu);
    st.run_done = true;
    st.run_error = ec;
    st.cv.notify_all();
  });

  // Events: printed as they arrive, stdout flushed per line.
  std::function<void()> pull;
  pull = [&] {
    client.async_next_event([&](tether::error_code ec, tether::ws::event ev) {
      if (ec) return;  // client_closed: no more events
      std::visit(
          [](auto& e) {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, tether::ws::message>) {
              if (e.is_text()) {
                std::fwrite(e.data.data(), 1, e.data.size(), stdout);
                std::fputc('\n', stdout);
                std::fflush(stdout);
              } else {
                std::fprintf(stderr, "# binary %zu bytes\n", e.data.size());
              }
            } else if constexpr (std::is_same_v<T, tether::ws::connected>) {
              std::fprintf(stderr, "# connected subprotocol=%s\n", e.subprotocol.c_str());
            } else if constexpr (std::is_same_v<T, tether::ws::disconnected>) {
              std::fprintf(stderr, "# disconnected code=%u reason=%s%s%s\n", e.code, e.reason.c_str(),
                           e.error ? " error=" : "", e.error ? e.error.message().c_str() : "");
              if (e.http_status) std::fprintf(stderr, "# handshake status=%u\n", e.http_status);
            } else if constexpr (std::is_same_v<T, tether::ws::reconnecting>) {
              std::fprintf(stderr, "# reconnecting attempt=%u delay_ms=%lld cause=%s\n", e.attempt,
                           static_cast<long long>(e.delay.count()), e.cause.message().c_str());
            }
          },
          ev);
      pull();
    });
  };
  pull();
  std::thread io([&] { ioc.run(); });

  // stdin: one text message per line, read on its own thread so that a connection that
  // ends by itself (e.g. refused) ends the program even while stdin stays open.
  bool eof = false;
  std::thread input([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      {
        std::lock_guard lk(st.mu);
        if (st.run_done) return;
        ++st.pending_sends;
      }
      client.async_send_text(line, [&](tether::error_code ec) {
        if (ec) std::fprintf(stderr, "# send failed: %s\n", ec.message().c_str());
        std::lock_guard lk(st.mu);
        --st.pending_sends;
        st.cv.notify_all();
      });
    }
    std::lock_guard lk(st.mu);
    eof = true;
    st.cv.notify_all();
  });
  input.detach();
  {
    std::unique_lock lk(st.mu);
    st.cv.wait(lk, [&] { return eof || st.run_done; });
    // Let what was typed go out before the close (bounded: a dead link fails the sends).
    st.cv.wait_for(lk, std::chrono::seconds(30), [&] { return st.pending_sends == 0 || st.run_done; });
  }
  client.close(1000, "");
  {
    std::unique_lock lk(st.mu);
    st.cv.wait(lk, [&] { return st.run_done; });
  }
  ioc.stop();
  io.join();
  if (st.run_error) {
    std::cerr << "tether-ws: " << st.run_error.message() << '\n';
    return 1;
  }
  return 0;
}
