// Keepalive, reconnection with backoff, outbox: the client takes care of itself.
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <thread>

using namespace std::chrono_literals;
using namespace tether;
using test::next_of;
using test::nothrow;
namespace asio = boost::asio;
using clk = std::chrono::steady_clock;

TEST_CASE("keepalive: a peer that stops answering is detected and reconnected", "[ws][resilience]") {
  test::ws_server server;
  server.set_behavior(test::ws_behavior::silent);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.ping_interval = 200ms;
    o.pong_timeout = 300ms;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await next_of<ws::connected>(c);
    const auto t0 = clk::now();
    auto d = co_await next_of<ws::disconnected>(c);
    const auto took = clk::now() - t0;
    CHECK(d.error == error::pong_timeout);
    CHECK(took >= 450ms);
    CHECK(took < 500ms + 400ms);  // ping_interval + pong_timeout + slack
    auto r = co_await next_of<ws::reconnecting>(c);
    CHECK(r.cause == error::pong_timeout);
    server.set_behavior(test::ws_behavior::echo);
    co_await next_of<ws::connected>(c);
    co_await c.async_close(nothrow);
  }());
}

// A peer that dies halfway through a message: the client holds the message's head while it
// waits for the rest, and the silence after its ping still means a dead peer.
TEST_CASE("keepalive: a peer that stops in the middle of a message is detected", "[ws][resilience]") {
  // Binary frames from the server: "first", then the head of 1,000 bytes (100 of them sent).
  const std::string first = std::string("\x82\x05", 2) + "first";
  const std::string head = std::string("\x82\x7e\x03\xe8", 4) + std::string(96, 'h');
  test::ws_server server;
  server.set_raw(first + head);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.ping_interval = 200ms;
    o.pong_timeout = 300ms;
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    auto m = co_await next_of<ws::message>(c);
    CHECK(m == ws::message::binary("first"));
    auto d = co_await next_of<ws::disconnected>(c);
    CHECK(d.error == error::pong_timeout);
  }());
}

TEST_CASE("keepalive: a live but quiet peer is not failed", "[ws][resilience]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.ping_interval = 50ms;
    o.pong_timeout = 200ms;
    o.pong_events = true;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await next_of<ws::connected>(c);
    for (int i = 0; i < 10; ++i) {
      co_await next_of<ws::pong>(c, [](const ws::event& e) {
        CHECK(!std::holds_alternative<ws::disconnected>(e));
      });
    }
    CHECK(c.state() == ws::connection_state::open);
    CHECK(c.last_rtt());
    co_await c.async_close(nothrow);
  }());
  CHECK(server.accepted() == 1);
}

TEST_CASE("reconnect: accept-then-close 10 times backs off, no tight loop", "[ws][resilience]") {
  test::ws_server server;
  server.set_close(1011, "going down");
  asio::io_context ioc;
  std::vector<ws::reconnecting> attempts;
  clk::duration elapsed{};
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.reconnect.backoff.initial = 20ms;
    o.reconnect.backoff.max = 1000ms;
    o.reconnect.backoff.min = 5ms;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    const auto t0 = clk::now();
    while (attempts.size() < 10) attempts.push_back(co_await next_of<ws::reconnecting>(c));
    elapsed = clk::now() - t0;
    co_await c.async_close(nothrow);
  }(), 30s);
  std::chrono::milliseconds ceiling = 20ms, sum{0};
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    CHECK(attempts[i].attempt == i + 1);  // never reset by the short-lived connections
    CHECK(attempts[i].delay <= ceiling);
    sum += attempts[i].delay;
    ceiling = std::min(ceiling * 2, std::chrono::milliseconds(1000));
  }
  CHECK(sum >= 300ms);
  CHECK(elapsed >= sum - attempts.back().delay);
  CHECK(server.accepted() <= 11);
}

TEST_CASE("reconnect: server restarted 3 times, outage messages arrive once, in order", "[ws][resilience]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await next_of<ws::connected>(c);
    int n = 0;
    std::vector<std::string> expected;
    for (int round = 0; round < 3; ++round) {
      server.stop();
      co_await next_of<ws::disconnected>(c);
      // Sent during the outage: queued, written after the next handshake.
      std::vector<std::shared_ptr<error_code>> results;
      for (int i = 0; i < 5; ++i) {
        auto r = std::make_shared<error_code>(asio::error::would_block);
        expected.push_back("m" + std::to_string(n));
        c.async_send_text("m" + std::to_string(n++), [r](error_code ec) { *r = ec; });
        results.push_back(r);
      }
      CHECK(*results.front() == asio::error::would_block);  // not sent while down
      server.start();
      co_await next_of<ws::connected>(c);
      for (int i = 0; i < 5; ++i) {
        auto m = co_await next_of<ws::message>(c);
        CHECK(m.data == expected[expected.size() - 5 + static_cast<std::size_t>(i)]);
      }
      for (auto& r : results) CHECK(!*r);
    }
    co_await c.async_close(nothrow);
    CHECK(server.received() == expected);
  }(), 30s);
}

TEST_CASE("reconnect: close() during a backoff wait returns promptly, no reconnect after", "[ws][resilience]") {
  test::ws_server server;
  server.stop();
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.reconnect.backoff.initial = 60s;
    o.reconnect.backoff.max = 60s;
    o.reconnect.backoff.min = 30s;
    ws::client c(ioc.get_executor(), o);
    bool run_done = false;
    c.async_run([&](error_code) { run_done = true; });
    auto r = co_await next_of<ws::reconnecting>(c);
    CHECK(r.delay >= 30s);
    const auto t0 = clk::now();
    co_await c.async_close(nothrow);
    CHECK(clk::now() - t0 < 1s);
    CHECK(run_done);
    CHECK(c.state() == ws::connection_state::closed);
  }());
  server.start();
  CHECK(server.accepted() == 0);
}

TEST_CASE("reconnect: 503 with Retry-After: 2 waits at least 2 s", "[ws][resilience]") {
  test::ws_server server;
  server.set_refuse(503, "2");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    c.async_run(asio::detached);
    auto r = co_await next_of<ws::reconnecting>(c);
    CHECK(r.http_status == 503);
    CHECK(r.delay >= 2000ms);
    const auto t0 = clk::now();
    server.set_behavior(test::ws_behavior::echo);
    co_await next_of<ws::connected>(c);
    CHECK(clk::now() - t0 >= 1900ms);
    co_await c.async_close(nothrow);
  }());
  CHECK(server.requests().size() == 2);
}

TEST_CASE("reconnect: close 1008 from the server stops with policy_violation", "[ws][resilience]") {
  test::ws_server server;
  server.set_close(1008, "nope");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    auto [ec] = co_await c.async_run(nothrow);
    CHECK(ec == error::policy_violation);
  }());
  CHECK(server.accepted() == 1);
}

TEST_CASE("reconnect: before_connect refreshes credentials for each attempt", "[ws][resilience]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.before_connect = [](ws::handshake_request& r) {
      r.headers = {{"Authorization", "Bearer token-" + std::to_string(r.attempt)}};
    };
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await next_of<ws::connected>(c);
    server.drop_all();
    co_await next_of<ws::connected>(c);
    co_await c.async_close(nothrow);
  }());
  auto reqs = server.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].headers["authorization"] == "Bearer token-0");
  CHECK(reqs[1].headers["authorization"] == "Bearer token-1");
}

TEST_CASE("outbox: overflow fails exactly the sends past the bound, close aborts the rest", "[ws][outbox]") {
  test::ws_server server;
  server.stop();
  asio::io_context ioc;
  std::vector<error_code> results(8, asio::error::would_block);
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.outbox_max_messages = 5;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    for (std::size_t i = 0; i < 8; ++i) c.async_send_text("x", [&, i](error_code ec) { results[i] = ec; });
    co_await next_of<ws::reconnecting>(c);
    for (std::size_t i = 5; i < 8; ++i) CHECK(results[i] == error::outbox_full);
    for (std::size_t i = 0; i < 5; ++i) CHECK(results[i] == asio::error::would_block);
    co_await c.async_close(nothrow);
  }());
  for (std::size_t i = 0; i < 5; ++i) CHECK(results[i] == asio::error::operation_aborted);
}

TEST_CASE("outbox: the byte bound is enforced too", "[ws][outbox]") {
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options("ws://127.0.0.1:1/");
    o.outbox_max_bytes = 100;
    ws::client c(ioc.get_executor(), o);
    error_code a = asio::error::would_block;
    c.async_send_text(std::string(60, 'a'), [&](error_code ec) { a = ec; });
    auto [ec] = co_await c.async_send_text(std::string(60, 'b'), nothrow);
    CHECK(ec == error::outbox_full);
    c.close();
    asio::steady_timer t(ioc, 10ms);
    co_await t.async_wait(nothrow);
    CHECK(a == asio::error::operation_aborted);
  }());
}

TEST_CASE("outbox: a message past its time to live fails with expired", "[ws][outbox]") {
  test::ws_server server;
  server.stop();
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    c.async_run(asio::detached);
    const auto t0 = clk::now();
    auto [ec] = co_await c.async_send(ws::message::text("typing..."), 150ms, nothrow);
    CHECK(ec == error::expired);
    CHECK(clk::now() - t0 >= 140ms);
    CHECK(clk::now() - t0 < 2s);
    co_await c.async_close(nothrow);
  }());
}

TEST_CASE("soak: reconnect cycles with concurrent senders on two threads", "[ws][soak]") {
  test::ws_server server;
  asio::io_context ioc;
  auto o = test::fast_options(server.url());
  o.reconnect.backoff.initial = 1ms;
  o.reconnect.backoff.max = 2ms;
  o.reconnect.backoff.min = 1ms;
  ws::client c(ioc.get_executor(), o);
  std::atomic<bool> run_done{false};
  c.async_run([&](error_code) { run_done = true; });
  // The application pulls its events (echoes included): a client whose application stops
  // pulling stops reading the socket by design, and would not see the drops either.
  std::vector<std::string> echoes;  // touched only by the completion chain below
  std::function<void()> pull = [&] {
    c.async_next_event([&](error_code ec, ws::event ev) {
      if (ec) return;
      if (auto* m = std::get_if<ws::message>(&ev)) echoes.push_back(std::move(m->data));
      pull();
    });
  };
  pull();
  std::atomic<int> completed{0}, succeeded{0};
  constexpr int per_thread = 2000;
  auto sender = [&](char tag) {
    for (int i = 0; i < per_thread; ++i)
      c.async_send_text(std::string(1, tag) + std::to_string(i), [&](error_code ec) {
        ++completed;
        succeeded += !ec;
      });
  };
  std::thread io1([&] { ioc.run_for(60s); });
  std::thread io2([&] { ioc.run_for(60s); });
  std::thread s1(sender, 'a'), s2(sender, 'b');
  constexpr std::size_t cycles = 1000;
  for (std::size_t i = 0; i < cycles; ++i) {
    REQUIRE(server.wait_for([&] { return server.accepted() > i && server.open_connections() > 0; }, 30s));
    server.drop_all();
  }
  s1.join();
  s2.join();
  c.close();
  REQUIRE(server.wait_for([&] { return run_done.load() && completed.load() == 2 * per_thread; }, 20s));
  ioc.stop();
  io1.join();
  io2.join();
  CHECK(completed == 2 * per_thread);
  CHECK(server.accepted() >= cycles);
  // Whatever the server received, it received each message at most once, and so did we.
  auto got = server.received();
  std::sort(got.begin(), got.end());
  CHECK(std::adjacent_find(got.begin(), got.end()) == got.end());
  CHECK(static_cast<std::size_t>(succeeded.load()) >= got.size());
  std::sort(echoes.begin(), echoes.end());
  CHECK(std::adjacent_find(echoes.begin(), echoes.end()) == echoes.end());
  CHECK(echoes.size() <= got.size());
}
