// autobahn_client: drives the Autobahn TestSuite fuzzingserver against tether.
//
//   autobahn_client ws://HOST:PORT AGENT
//
// Opens /getCaseCount, then /runCase?case=N&agent=AGENT for N = 1..count, echoing every
// text and binary message back verbatim, then /updateReports?agent=AGENT. Exits 0 when the
// run completes (whatever the verdicts), 1 if the server cannot be reached.
#include <tether/ws.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <string>
#include <variant>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

tether::ws::options case_options(const std::string& url) {
  tether::ws::options o;
  o.url = url;
  o.reconnect.enabled = false;
  o.max_message_size = 64u << 20;  // the fuzzing cases go up to 16 MiB
  o.outbox_max_bytes = 128u << 20;
  o.ping_interval = 0ms;           // the cases judge exactly what we send
  o.close_timeout = 5s;
  o.permessage_deflate = true;
  return o;
}

// Runs one connection: echoes messages until the server closes. Returns the first text
// message (for getCaseCount) and whether a handshake happened.
asio::awaitable<std::pair<bool, std::string>> session(const std::string& url, bool echo) {
  auto ex = co_await asio::this_coro::executor;
  tether::ws::client c(ex, case_options(url));
  c.async_run([](tether::error_code) {});
  bool connected = false;
  std::string first;
  for (;;) {
    auto [ec, ev] = co_await c.async_next_event(nothrow);
    if (ec) break;
    if (std::holds_alternative<tether::ws::connected>(ev)) connected = true;
    if (auto* m = std::get_if<tether::ws::message>(&ev)) {
      if (first.empty()) first = m->data;
      if (echo) c.async_send(std::move(*m), [](tether::error_code) {});
    }
    if (std::holds_alternative<tether::ws::disconnected>(ev)) break;
  }
  co_await c.async_close(nothrow);
  co_return std::make_pair(connected, first);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: autobahn_client ws://HOST:PORT AGENT\n";
    return 1;
  }
  std::string base = argv[1];
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string agent = argv[2];
  int rc = 0;
  asio::io_context ioc;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        const auto count_url = base + "/getCaseCount";
        auto [ok, text] = co_await session(count_url, false);
        int count = 0;
        try {
          count = std::stoi(text);
        } catch (...) {
          ok = false;
        }
        if (!ok) {
          std::cerr << "autobahn_client: could not read the case count from " << count_url << '\n';
          rc = 1;
          co_return;
        }
        for (int n = 1; n <= count; ++n) {
          std::cerr << "case " << n << "/" << count << '\n';
          std::string url = base;
          url += "/runCase?case=" + std::to_string(n) + "&agent=";
          url += agent;
          co_await session(url, true);
        }
        const auto report = base + "/updateReports?agent=" + agent;
        co_await session(report, false);
      },
      [&](const std::exception_ptr& e) {
        if (e) rc = 1;
      });
  ioc.run();
  return rc;
}
