// ws::client against the loopback fixture: messages, headers, subprotocols, close, limits.
#include "fixtures/ws_server.hpp"
#include "support/executors.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <tether/ws.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <functional>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace tether;
using test::next_of;
using test::nothrow;
namespace asio = boost::asio;

namespace {
struct run_result {
  bool done = false;
  error_code ec;
};
// Starts c.run(), recording its result.
std::shared_ptr<run_result> start(ws::client& c) {
  auto r = std::make_shared<run_result>();
  c.async_run([r](error_code ec) {
    r->done = true;
    r->ec = ec;
  });
  return r;
}
// Runs `ioc` until `done()` or 10 s, catching what application handlers throw out of the event
// loop's run(); returns how many were thrown.
int run_catching(asio::io_context& ioc, const std::function<bool()>& done) {
  int thrown = 0;
  const auto limit = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < limit) {
    try {
      ioc.run_for(100ms);
    } catch (const std::runtime_error&) {
      ++thrown;  // posted rather than run inline: Asio hands it to whoever runs the loop
    }
  }
  return thrown;
}
// The options of a client of the fixture's echo that does not reconnect.
ws::options echo_once(const test::ws_server& server) {
  auto o = test::fast_options(server.url("/echo"));
  o.reconnect.enabled = false;
  return o;
}
}  // namespace

TEST_CASE("client: echo of text and binary, in order", "[ws][client]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url("/echo")));
    auto run = start(c);
    auto conn = co_await next_of<ws::connected>(c);
    CHECK(conn.subprotocol.empty());
    for (int i = 0; i < 50; ++i) {
      c.async_send_text("text-" + std::to_string(i), asio::detached);
      c.async_send_binary(std::string("\x00\x01\xff", 3) + std::to_string(i), asio::detached);
    }
    for (int i = 0; i < 50; ++i) {
      auto t = co_await next_of<ws::message>(c);
      CHECK(t == ws::message::text("text-" + std::to_string(i)));
      auto b = co_await next_of<ws::message>(c);
      CHECK(b == ws::message::binary(std::string("\x00\x01\xff", 3) + std::to_string(i)));
    }
    const ws::close_reason bye{1000, "bye"};
    auto [ec] = co_await c.async_close(bye, nothrow);
    CHECK(!ec);
    auto d = co_await next_of<ws::disconnected>(c);
    INFO(d.error.message());
    CHECK(d.code == 1000);
    CHECK(!d.error);
    CHECK(run->done);
    CHECK(!run->ec);
    CHECK(c.state() == ws::connection_state::closed);
    auto [ec2, ev] = co_await c.async_next_event(nothrow);
    CHECK(ec2 == error::client_closed);
  }());
  CHECK(server.wait_for([&] { return server.close_codes() == std::vector<std::uint16_t>{1000}; }));
}

TEST_CASE("client: messages of every size, all in flight at once, come back whole and in order", "[ws][client]") {
  // The reader takes small messages whole from memory and reads large ones straight into their
  // own string while the writer frames large ones in pieces; the largest are Beast's.
  test::ws_server server;
  server.set_whole_frames(true);
  test::check_every_size_echoed(test::fast_options(server.url("/echo")));
}

// Three ways to run a client: on an io_context one thread runs (a strand of its own inside); on
// one constructed with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO, the application's promise to
// Asio that one thread at a time runs it (no strand); on a strand of an io_context two threads
// run (that strand serializes the connection). Under TSan, each is checked for races too.
TEST_CASE("client: sends from several threads are each delivered once", "[ws][client]") {
  struct row {
    const char* what;
    int hint;
    int io_threads;
    bool on_strand;
  };
  const auto r = GENERATE(row{"one io thread", 1, 1, false},
                          row{"one io thread promised to Asio (UNSAFE_IO)", BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO, 1, false},
                          row{"two io threads, the client on a strand", 2, 2, true});
  INFO(r.what);
  test::ws_server server;
  asio::io_context ioc(r.hint);
  auto opts = test::fast_options(server.url());
  ws::client c(r.on_strand ? asio::any_io_executor(asio::make_strand(ioc)) : asio::any_io_executor(ioc.get_executor()),
               opts);
  auto run = start(c);
  std::atomic<int> ok{0};
  std::thread t1([&] {
    for (int i = 0; i < 300; ++i) c.async_send_text("a" + std::to_string(i), [&](error_code ec) { ok += !ec; });
  });
  std::thread t2([&] {
    for (int i = 0; i < 300; ++i) c.async_send_text("b" + std::to_string(i), [&](error_code ec) { ok += !ec; });
  });
  std::vector<std::thread> io;
  for (int i = 0; i < r.io_threads; ++i) io.emplace_back([&] { ioc.run_for(20s); });
  t1.join();
  t2.join();
  REQUIRE(server.wait_for([&] { return server.received().size() == 600; }, 15s));
  auto got = server.received();
  // Per-sender order is kept.
  int na = 0, nb = 0;
  for (auto& s : got) {
    if (s[0] == 'a') CHECK(s == "a" + std::to_string(na++));
    else CHECK(s == "b" + std::to_string(nb++));
  }
  c.close();
  for (auto& t : io) t.join();
  CHECK(ok == 600);
  CHECK(run->done);
}

TEST_CASE("client: headers, token and subprotocols reach the server", "[ws][client]") {
  test::ws_server server;
  server.set_subprotocol("chat.v2");
  asio::io_context ioc;
  std::vector<std::string> logs;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url("/room?x=1"));
    o.headers = {{"Authorization", "Bearer TOPSECRET"}, {"X-Trace", "abc"}};
    o.token = "QUERYSECRET";
    o.subprotocols = {"chat.v1", "chat.v2"};
    o.log = {[&](net::log_level, std::string_view s) { logs.emplace_back(s); }, net::log_level::trace};
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    auto conn = co_await next_of<ws::connected>(c);
    CHECK(conn.subprotocol == "chat.v2");
    bool found = false;
    for (auto& [k, v] : conn.response_headers) found = found || (k == "Sec-WebSocket-Protocol" && v == "chat.v2");
    CHECK(found);
    co_await c.async_close(nothrow);
  }());
  auto reqs = server.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].headers["authorization"] == "Bearer TOPSECRET");
  CHECK(reqs[0].headers["x-trace"] == "abc");
  CHECK(reqs[0].headers["sec-websocket-protocol"] == "chat.v1, chat.v2");
  CHECK(reqs[0].target == "/room?x=1&access_token=QUERYSECRET");
  REQUIRE(!logs.empty());
  for (auto& l : logs) {
    CHECK(l.find("TOPSECRET") == std::string::npos);
    CHECK(l.find("QUERYSECRET") == std::string::npos);
  }
}

TEST_CASE("client: a subprotocol that was not offered fails the connection", "[ws][client]") {
  test::ws_server server;
  server.set_subprotocol("evil");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.subprotocols = {"good"};
    ws::client c(ioc.get_executor(), o);
    auto run = co_await c.async_run(nothrow);
    CHECK(std::get<0>(run) == error::subprotocol_mismatch);
    auto d = co_await next_of<ws::disconnected>(c);
    CHECK(d.error == error::subprotocol_mismatch);
  }());
  CHECK(server.requests().size() == 1);  // not retried
}

TEST_CASE("client: an extension that was not offered fails the connection", "[ws][client]") {
  test::ws_server server;
  server.set_extension_header("x-webkit-deflate-frame");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    auto [ec] = co_await c.async_run(nothrow);
    CHECK(ec == error::extension_mismatch);
  }());
}

TEST_CASE("client: handshake refused with 401/403/404 is reported with the status, not retried", "[ws][client]") {
  for (unsigned status : {401u, 403u, 404u}) {
    test::ws_server server;
    server.set_refuse(status);
    asio::io_context ioc;
    test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
      ws::client c(ioc.get_executor(), test::fast_options(server.url()));
      auto [ec] = co_await c.async_run(nothrow);
      CHECK(ec == error::handshake_rejected);
      auto d = co_await next_of<ws::disconnected>(c);
      CHECK(d.http_status == status);
    }());
    CHECK(server.requests().size() == 1);
  }
}

TEST_CASE("client: the server's close code and reason are reported", "[ws][client]") {
  test::ws_server server;
  server.set_close(4001, "kicked");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    auto d = co_await next_of<ws::disconnected>(c);
    CHECK(d.code == 4001);
    CHECK(d.reason == "kicked");
    CHECK(!d.error);
  }());
}

TEST_CASE("client: close code and reason reach the server", "[ws][client]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    const ws::close_reason done{4321, "done here"};
    co_await c.async_close(done, nothrow);
  }());
  CHECK(server.wait_for([&] { return server.close_codes() == std::vector<std::uint16_t>{4321}; }));
}

TEST_CASE("client: a close the peer never answers ends after close_timeout", "[ws][client]") {
  test::ws_server server;
  server.set_behavior(test::ws_behavior::silent);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.close_timeout = 300ms;
    o.ping_interval = 0ms;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    const auto t0 = std::chrono::steady_clock::now();
    co_await c.async_close(nothrow);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 250ms);
    CHECK(took < 3s);
    auto d = co_await next_of<ws::disconnected>(c);
    CHECK(d.error == error::close_timeout);
    CHECK(run->done);
  }());
}

// One watchdog wait serves the connect and the handshake: the handshake's deadline holds
// whether it comes before the connect's (the wait is moved) or after it (the wait that ends
// first waits again).
TEST_CASE("client: a server that accepts and never answers the upgrade fails after handshake_timeout",
          "[ws][client]") {
  struct row {
    std::chrono::milliseconds connect_timeout, handshake_timeout;
  };
  const auto r = GENERATE(row{10s, 300ms}, row{100ms, 400ms});
  INFO("connect_timeout " << r.connect_timeout.count() << " ms, handshake_timeout " << r.handshake_timeout.count() << " ms");
  asio::io_context ioc;
  asio::ip::tcp::acceptor acc(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<asio::ip::tcp::socket> held;  // accepted and never read nor answered
  acc.async_accept([&](error_code ec, asio::ip::tcp::socket s) {
    if (!ec) held.push_back(std::move(s));
  });
  std::shared_ptr<run_result> run;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options("ws://127.0.0.1:" + std::to_string(acc.local_endpoint().port()) + "/");
    o.reconnect.enabled = false;
    o.connect_timeout = r.connect_timeout;
    o.handshake_timeout = r.handshake_timeout;
    ws::client c(ioc.get_executor(), o);
    const auto t0 = std::chrono::steady_clock::now();
    run = start(c);
    auto d = co_await next_of<ws::disconnected>(c);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(d.error == error::handshake_timeout);
    CHECK(took >= r.handshake_timeout - 50ms);
    CHECK(took < r.handshake_timeout + 3s);
    CHECK(held.size() == 1);
  }());
  // run_bounded let the loop wind down: run() has ended with the same error.
  REQUIRE(run);
  CHECK(run->done);
  CHECK(run->ec == error::handshake_timeout);
}

using test::counting_executor;
static_assert(!std::is_convertible_v<counting_executor, asio::any_io_executor>);

// The executor a message's handler and a send's handler are bound to runs them: taken when the
// operation starts when an any_io_executor can hold it, asked of the handler at completion
// when not.
TEST_CASE("client: event and send handlers run on the executors they are bound to", "[ws][client]") {
  test::ws_server server;
  asio::io_context ioc;
  auto strand = asio::make_strand(ioc);
  int counted_runs = 0;
  const counting_executor counted{&ioc, &counted_runs};
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), echo_once(server));
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    asio::steady_timer all_done(ioc, std::chrono::steady_clock::time_point::max());
    int done = 0;
    bool send_on_strand = false, send_counted = false, event_on_strand = false;
    std::string echoed;
    auto finish = [&] {
      if (++done == 3) all_done.cancel();
    };
    c.async_send_text("one", asio::bind_executor(strand, [&](error_code ec) {
      send_on_strand = !ec && strand.running_in_this_thread();
      finish();
    }));
    c.async_send_text("two", asio::bind_executor(counted, [&, before = counted_runs](error_code ec) {
      send_counted = !ec && counted_runs == before + 1;
      finish();
    }));
    c.async_next_event(asio::bind_executor(strand, [&](error_code ec, ws::event e) {
      event_on_strand = !ec && strand.running_in_this_thread();
      if (auto* m = std::get_if<ws::message>(&e)) echoed = m->data;
      finish();
    }));
    while (done < 3) co_await all_done.async_wait(nothrow);
    CHECK(send_on_strand);
    CHECK(send_counted);
    CHECK(event_on_strand);
    CHECK(echoed == "one");
    co_await c.async_close(nothrow);
    CHECK(run->done);
  }());
}

TEST_CASE("client: ping with payload, pong observed with its round trip", "[ws][client]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.pong_events = true;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    auto [ec] = co_await c.async_ping("hello-ping", nothrow);
    CHECK(!ec);
    auto p = co_await next_of<ws::pong>(c);
    CHECK(p.payload == "hello-ping");
    CHECK(c.last_rtt().has_value());
    auto [ec2] = co_await c.async_ping(std::string(126, 'x'), nothrow);
    CHECK(ec2 == error::invalid_argument);
    co_await c.async_close(nothrow);
  }());
}

TEST_CASE("client: permessage-deflate is negotiated and works", "[ws][client]") {
  test::ws_server server;
  server.set_deflate(true);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.permessage_deflate = true;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    auto conn = co_await next_of<ws::connected>(c);
    bool deflate = false;
    for (auto& [k, v] : conn.response_headers) deflate = deflate || v.find("permessage-deflate") != std::string::npos;
    CHECK(deflate);
    const std::string big(200000, 'z');
    co_await c.async_send_text(big, nothrow);
    auto m = co_await next_of<ws::message>(c);
    CHECK(m.data == big);
    co_await c.async_close(nothrow);
  }());
  CHECK(server.requests().at(0).headers["sec-websocket-extensions"].find("permessage-deflate") != std::string::npos);
}

TEST_CASE("client: large messages and a bounded event queue lose nothing", "[ws][client]") {
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.event_queue_limit = 2;
    o.max_message_size = 8u << 20;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    std::vector<std::string> sent;
    for (int i = 0; i < 20; ++i) {
      sent.push_back(std::string(static_cast<std::size_t>(100000 + i * 50000), static_cast<char>('a' + i)));
      c.async_send_binary(sent.back(), asio::detached);
    }
    // Let the echoes pile up while we are not reading: the queue stays bounded.
    asio::steady_timer t(ioc, 300ms);
    co_await t.async_wait(nothrow);
    for (int i = 0; i < 20; ++i) {
      auto m = co_await next_of<ws::message>(c);
      CHECK(m.data == sent[static_cast<std::size_t>(i)]);
    }
    co_await c.async_close(nothrow);
  }());
}

TEST_CASE("client: writes the socket takes only in part go out whole and in order (peer stalls reading)",
          "[ws][client]") {
  test::ws_server server;
  server.set_read_pause(300ms);  // the socket buffers fill; later writes are taken in part
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.max_message_size = 2u << 20;
    ws::client c(ioc.get_executor(), o);
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    // Large messages (Beast's write, in pieces) between small ones (framed in batches); each
    // message's bytes depend on its index, so a lost, repeated or misplaced piece shows.
    std::vector<ws::message> sent;
    for (std::size_t i = 0; i < 600; ++i) {
      std::string d(i % 75 == 0 ? (1u << 20) + i : 2000 + i, '\0');
      for (std::size_t k = 0; k < d.size(); ++k) d[k] = static_cast<char>('a' + (i * 7 + k) % 26);
      sent.push_back(i % 75 == 0 ? ws::message::binary(std::move(d)) : ws::message::text(std::move(d)));
    }
    std::size_t completed = 0;
    error_code first_error;
    for (const auto& m : sent) {
      c.async_send(m, [&](error_code ec) {
        ++completed;
        if (ec && !first_error) first_error = ec;
      });
    }
    for (std::size_t i = 0; i < sent.size(); ++i) {
      auto m = co_await next_of<ws::message>(c);
      INFO("message " << i);
      REQUIRE(m == sent[i]);
    }
    CHECK(completed == sent.size());
    CHECK(!first_error);
    co_await c.async_close(nothrow);
  }());
}

TEST_CASE("client: IPv6 loopback", "[ws][client]") {
  test::ws_server_options so;
  so.address = "::1";
  std::unique_ptr<test::ws_server> server;
  try {
    server = std::make_unique<test::ws_server>(so);
  } catch (const std::exception&) {
    WARN("no IPv6 loopback here; skipped");
    return;
  }
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options("ws://[::1]:" + std::to_string(server->port()) + "/"));
    auto run = start(c);
    co_await next_of<ws::connected>(c);
    co_await c.async_send_text("v6", nothrow);
    auto m = co_await next_of<ws::message>(c);
    CHECK(m.data == "v6");
    co_await c.async_close(nothrow);
  }());
}

TEST_CASE("client: bad URLs end run at once with a clear error", "[ws][client]") {
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    for (auto [url, want] : {std::pair<const char*, error>{"http://127.0.0.1:1/", error::unsupported_scheme},
                             {"ws://", error::invalid_url}}) {
      ws::client c(ioc.get_executor(), test::fast_options(url));
      auto [ec] = co_await c.async_run(nothrow);
      CHECK(ec == want);
    }
  }());
}

TEST_CASE("client: Sec-WebSocket-Key and masking keys do not repeat", "[ws][client][random]") {
  test::ws_server server;
  server.set_raw("");  // accept, then record raw frames
  asio::io_context ioc;
  std::set<std::string> keys;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    // Thousands of handshakes: every key distinct, 16 random bytes in base64.
    for (int i = 0; i < 1500; ++i) {
      auto o = test::fast_options(server.url());
      o.reconnect.enabled = false;
      o.ping_interval = 0ms;
      o.outbox_max_messages = 5000;
      ws::client c(ioc.get_executor(), o);
      auto run = start(c);
      co_await next_of<ws::connected>(c);
      if (i == 0) {
        for (int k = 0; k < 4000; ++k) c.async_send_text("m", asio::detached);
        auto [sec] = co_await c.async_send_text("last", nothrow);
        CHECK(!sec);
      }
      c.close();
      co_await next_of<ws::disconnected>(c);
    }
  }(), 120s);
  auto reqs = server.requests();
  CHECK(reqs.size() == 1500);
  for (auto& r : reqs) keys.insert(r.headers["sec-websocket-key"]);
  CHECK(keys.size() == 1500);
  for (auto& k : keys) CHECK(k.size() == 24);
  INFO(server.raw_frames().size());
  REQUIRE(server.wait_for([&] { return server.raw_frames().size() >= 4001; }));
  std::set<std::uint32_t> masks;
  std::size_t data_frames = 0;
  for (auto& f : server.raw_frames()) {
    CHECK(f.masked);
    if (f.opcode == 1) {
      ++data_frames;
      masks.insert(f.mask);
    }
  }
  // 32-bit keys: a strong source repeats among 4001 with probability ~0.2%; allow one.
  CHECK(masks.size() + 1 >= data_frames);
}

TEST_CASE("client: a connected handler that throws ends run with an error and frees the connection", "[ws][client]") {
  // The connected event runs the application's handler inline from the connection's own turn.
  test::ws_server server;
  asio::io_context ioc;
  ws::client c(ioc.get_executor(), echo_once(server));
  auto run = start(c);
  c.async_next_event([&](error_code ec, ws::event ev) {
    if (!ec && std::holds_alternative<ws::connected>(ev)) throw std::runtime_error("application bug");
  });
  const int thrown = run_catching(ioc, [&] { return run->done; });
  CHECK(run->done);
  CHECK(run->ec);
  CHECK(thrown == 0);  // reported through run, not thrown out of the loop
}

TEST_CASE("client: a send handler that throws leaves the others and the connection working", "[ws][client]") {
  // Send handlers complete inline after the write; one that throws has its exception thrown out
  // of the event loop's run(), as a posted handler's would be, and nothing else is lost.
  test::ws_server server;
  asio::io_context ioc;
  ws::client c(ioc.get_executor(), echo_once(server));
  auto run = start(c);
  int completed = 0;
  int echoes = 0;
  std::function<void(error_code, ws::event)> on_event = [&](error_code ec, ws::event ev) {
    if (ec) return;
    if (std::holds_alternative<ws::connected>(ev)) {
      c.async_send_text("one", [](error_code) { throw std::runtime_error("application bug"); });
      c.async_send_text("two", [&](error_code e) { completed += e ? 0 : 1; });
    } else if (std::holds_alternative<ws::message>(ev) && ++echoes == 2) {
      // After the throw: the connection still carries messages both ways.
      c.async_send_text("three", [&](error_code e) { completed += e ? 0 : 1; });
    }
    if (echoes < 3) c.async_next_event(on_event);
  };
  c.async_next_event(on_event);
  const int thrown = run_catching(ioc, [&] { return (echoes == 3 && completed == 2) || run->done; });
  CHECK(thrown == 1);
  CHECK(completed == 2);
  CHECK(echoes == 3);
  CHECK_FALSE(run->done);
  c.close();
  ioc.run_for(200ms);
}

TEST_CASE("client: an event handler that throws does not take the connection's memory with it", "[ws][client]") {
  // The application's handler runs inline from the reader; its exception ends run (reported as
  // an error) only after the writer and pinger have let go of the connection (ASan sees the rest).
  test::ws_server server;
  asio::io_context ioc;
  auto opts = echo_once(server);
  opts.ping_interval = 10ms;
  ws::client c(ioc.get_executor(), opts);
  auto run = start(c);
  c.async_next_event([&](error_code, ws::event) {  // connected
    c.async_send_text("boom", asio::detached);
    c.async_next_event([&](error_code ec, ws::event ev) {
      if (!ec && std::holds_alternative<ws::message>(ev)) throw std::runtime_error("application bug");
    });
  });
  const int thrown = run_catching(ioc, [&] { return run->done; });
  CHECK((run->done || thrown > 0));
  if (run->done) CHECK(run->ec);
  c.close();
  ioc.run_for(200ms);
}
