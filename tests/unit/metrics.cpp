// Metrics hooks: a reconnecting ws::client and a resumed download drive the counters, read
// through the Prometheus sink of the examples (so its rendering is checked too).
#include "../../examples/prometheus_sink.hpp"
#include "fixtures/http_server.hpp"
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/transfer_helpers.hpp"
#include "support/ws_helpers.hpp"

#include <tether/ws/detail/reconnect_fsm.hpp>

#include <boost/asio/detached.hpp>
#include <boost/beast/websocket/error.hpp>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;
namespace m = tether::net::metric;

TEST_CASE("metrics: a ws session with a reconnect counts connections, the cause, messages, bytes and pings", "[metrics][ws]") {
  test::ws_server server;
  auto sink = std::make_shared<tether_examples::prometheus_sink>();
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.metrics = sink;
    o.ping_interval = 20ms;  // pings go out while the test runs; their round trips are timed
    o.pong_events = true;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    for (const char* text : {"one", "two", "three"}) co_await c.async_send_text(text, test::nothrow);
    for (int i = 0; i < 3; ++i) co_await test::next_of<ws::message>(c);
    server.close_all(1001, "restart");
    auto r = co_await test::next_of<ws::reconnecting>(c);
    CHECK(r.cause == error::closed_by_server);
    co_await test::next_of<ws::connected>(c);
    co_await c.async_send_text("four!", test::nothrow);
    co_await test::next_of<ws::message>(c);
    // A ping's round trip is timed before its pong event is delivered.
    co_await test::next_of<ws::pong>(c);
    co_await c.async_close(test::nothrow);
  }());
  CHECK(sink->value(m::ws_connections) == 2);
  CHECK(sink->value(m::ws_reconnects, R"(cause="closed_by_server")") == 1);
  CHECK(sink->value(m::ws_messages_out) == 4);
  CHECK(sink->value(m::ws_bytes_out) == 3 + 3 + 5 + 5);
  CHECK(sink->value(m::ws_messages_in) == 4);
  CHECK(sink->value(m::ws_bytes_in) == 3 + 3 + 5 + 5);
  CHECK(sink->value(m::ws_outbox_depth) == 0);
  CHECK(sink->observations(m::ws_ping_rtt) >= 1);
  const auto text = sink->render();
  CHECK(text.find("# TYPE tether_ws_connections_total counter\ntether_ws_connections_total 2\n") != std::string::npos);
  CHECK(text.find("tether_ws_reconnects_total{cause=\"closed_by_server\"} 1\n") != std::string::npos);
  CHECK(text.find("# TYPE tether_ws_ping_rtt_seconds summary\n") != std::string::npos);
}

TEST_CASE("metrics: a resumed download counts the run, its bytes, the retry and the fsyncs", "[metrics][transfer]") {
  test::http_server s;
  s.add_content("/f", 1'000'000);
  s.set_fault({.count = 1, .drop_after = 300'000});
  test::transfer_env env;
  auto sink = std::make_shared<tether_examples::prometheus_sink>();
  auto o = env.options();
  o.metrics = sink;
  {
    transfer::manager mgr(env.pool.get_executor(), o);
    const auto r = test::download(mgr, env.download(s.url("/f"), "f.bin"), "metered");
    REQUIRE(r.outcome == transfer::outcome::success);
    REQUIRE(r.attempts == 2);
    CHECK(sink->value(m::transfers_started, R"(kind="download")") == 1);
    CHECK(sink->value(m::transfers_finished, R"(outcome="success")") == 1);
    CHECK(sink->value(m::transfers_active) == 0);
    CHECK(sink->value(m::transfer_retries) == 1);
    // Every byte that reached the file, including those fetched before the cut.
    CHECK(sink->value(m::transfer_bytes, R"(kind="download")") == static_cast<double>(r.bytes_received));
    CHECK(r.bytes_received >= 1'000'000);
    // 64 KiB checkpoints over 1 MB: the data was synced, timed each time (checkpoints that
    // come while a sync runs share the next one, so how many depends on the disk).
    CHECK(sink->observations(m::transfer_fsync) >= 1);
  }
  CHECK(sink->render().find("tether_transfers_finished_total{outcome=\"success\"} 1\n") != std::string::npos);
}

TEST_CASE("metrics: reconnection causes map to a small fixed set of labels", "[metrics][ws]") {
  namespace ae = boost::asio::error;
  const std::pair<error_code, const char*> rows[] = {
      {error::closed_by_server, R"(cause="closed_by_server")"},
      {error::pong_timeout, R"(cause="pong_timeout")"},
      {error::handshake_rejected, R"(cause="handshake_rejected")"},
      {ae::connection_refused, R"(cause="refused")"},
      {ae::connection_reset, R"(cause="reset")"},
      {ae::eof, R"(cause="reset")"},
      {boost::beast::websocket::error::closed, R"(cause="reset")"},
      {error::connect_timeout, R"(cause="timeout")"},
      {error::handshake_timeout, R"(cause="timeout")"},
      {error::pin_mismatch, R"(cause="tls")"},
      {error_code(20, tls_verify_category()), R"(cause="tls")"},
      {error::proxy_failed, R"(cause="proxy")"},
      {error_code(5, socks_category()), R"(cause="proxy")"},
      {ae::host_not_found, R"(cause="network")"},
      {ae::network_unreachable, R"(cause="network")"},
      {error::protocol_error, R"(cause="other")"},
  };
  for (const auto& [ec, label] : rows) {
    INFO(ec.message());
    CHECK(std::string(ws::detail::cause_label(ec)) == label);
  }
}
