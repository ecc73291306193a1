// tether-metrics-demo: a reconnecting WebSocket client whose metrics a Prometheus server can
// scrape. It keeps a connection to URL, sends "tick N" every few seconds, prints each message
// it receives, and serves tether's counters, gauges and timings as Prometheus text at
// http://127.0.0.1:PORT/metrics (loopback only; default port 9464).
//
//   tether-metrics-demo ws://127.0.0.1:8080/chat [--port 9464]
//   curl -s http://127.0.0.1:9464/metrics
#include <tether/version.hpp>
#include <tether/ws.hpp>

#include "../prometheus_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <iostream>
#include <memory>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

/// One scrape: reads the request head (at most 8 KiB, 5 s) and answers with the metrics.
asio::awaitable<void> serve_scrape(tcp::socket s, std::shared_ptr<tether_examples::prometheus_sink> sink) {
  asio::steady_timer deadline(s.get_executor(), std::chrono::seconds(5));
  deadline.async_wait([&s](boost::system::error_code ec) {
    if (!ec) s.close();
  });
  asio::streambuf head(std::size_t{8} * 1024);
  auto [ec, n] = co_await asio::async_read_until(s, head, "\r\n\r\n", nothrow);
  if (ec) co_return;
  std::string request_line;
  std::istream in(&head);
  std::getline(in, request_line);
  const bool ok = request_line.rfind("GET /metrics ", 0) == 0;
  const std::string body = ok ? sink->render() : "not found: try /metrics\n";
  const std::string response = std::string(ok ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
                               "Content-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  co_await asio::async_write(s, asio::buffer(response), nothrow);
  deadline.cancel();
}

asio::awaitable<void> serve_metrics(tcp::acceptor& acceptor, std::shared_ptr<tether_examples::prometheus_sink> sink) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(nothrow);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), serve_scrape(std::move(s), sink), asio::detached);
  }
}

/// Prints what arrives: messages on stdout, reconnections on stderr.
asio::awaitable<void> print_events(tether::ws::client& client) {
  // Through a timer's zero wait first: clang-analyzer 14 misreads a coroutine whose first
  // suspension is a library's async_initiate (a false null dereference inside Asio).
  asio::steady_timer start(co_await asio::this_coro::executor);
  co_await start.async_wait(nothrow);
  for (;;) {
    auto [ec, ev] = co_await client.async_next_event(nothrow);
    if (ec) break;
    if (auto* m = std::get_if<tether::ws::message>(&ev)) std::cout << m->data << std::endl;
    if (auto* r = std::get_if<tether::ws::reconnecting>(&ev))
      std::cerr << "# reconnecting: " << r->cause.message() << '\n';
  }
}

/// A tick every 5 s (queued while disconnected, within the outbox's bounds).
asio::awaitable<void> tick(tether::ws::client& client) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (unsigned n = 1;; ++n) {
    t.expires_after(std::chrono::seconds(5));
    auto [tec] = co_await t.async_wait(nothrow);
    if (tec || client.state() == tether::ws::connection_state::closed) co_return;
    std::string text = "tick " + std::to_string(n);  // a named local (GCC 12 and co_await)
    auto [sec] = co_await client.async_send_text(std::move(text), nothrow);
    if (sec == boost::asio::error::operation_aborted) co_return;
  }
}

int usage_error(const std::string& what) {
  std::cerr << "tether-metrics-demo: " << what << "\nusage: tether-metrics-demo ws://HOST[:PORT]/PATH [--port N]\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  unsigned port = 9464;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      const std::string v = argv[++i];
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
      if (ec != std::errc{} || p != v.data() + v.size() || port > 65535)
        return usage_error("--port '" + v + "': expected a port number");
    } else if (a == "--version") {
      std::cout << "tether-metrics-demo " TETHER_VERSION_STRING "\n";
      return 0;
    } else if (url.empty() && !a.empty() && a[0] != '-') {
      url = a;
    } else {
      return usage_error("unexpected argument '" + a + "'");
    }
  }
  if (url.empty()) return usage_error("no URL");

  auto sink = std::make_shared<tether_examples::prometheus_sink>();
  asio::io_context ioc;
  tether::ws::options o;
  o.url = url;
  o.metrics = sink;
  tether::ws::client client(ioc.get_executor(), o);

  boost::system::error_code ec;
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint where(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port));
  acceptor.open(where.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(where, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "tether-metrics-demo: cannot listen on 127.0.0.1:" << port << ": " << ec.message() << '\n';
    return 1;
  }
  std::cerr << "# metrics at http://127.0.0.1:" << acceptor.local_endpoint().port() << "/metrics\n";
  asio::co_spawn(ioc, serve_metrics(acceptor, sink), asio::detached);

  int exit_code = 0;
  client.async_run([&](tether::error_code run_ec) {
    if (run_ec) {
      std::cerr << "tether-metrics-demo: " << run_ec.message() << '\n';
      exit_code = 1;
    }
    acceptor.close();
  });
  asio::co_spawn(ioc, print_events(client), asio::detached);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) { client.close(); });

  asio::co_spawn(ioc, tick(client), asio::detached);
  ioc.run();
  return exit_code;
}
