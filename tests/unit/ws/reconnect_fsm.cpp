#include <tether/ws/detail/reconnect_fsm.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::ws::detail::attempt_outcome;
using tether::ws::detail::reconnect_fsm;
using clk = std::chrono::steady_clock;

namespace {
tether::ws::reconnect_policy policy() {
  tether::ws::reconnect_policy p;
  p.seed = 99;
  p.backoff.initial = 100ms;
  p.backoff.max = 3200ms;
  p.backoff.min = 10ms;
  return p;
}
attempt_outcome dropped(std::chrono::milliseconds up) {
  attempt_outcome o;
  o.opened = true;
  o.uptime = up;
  o.error = boost::asio::error::connection_reset;
  o.close_code = 1006;
  return o;
}
}  // namespace

TEST_CASE("reconnect: accept-then-drop backs off instead of resetting", "[ws][fsm]") {
  reconnect_fsm fsm(policy());
  auto now = clk::now();
  std::chrono::milliseconds ceiling = 100ms, total{0};
  for (std::uint32_t i = 1; i <= 10; ++i) {
    auto d = fsm.next(dropped(1ms), now);
    REQUIRE(d.retry);
    CHECK(d.attempt == i);
    CHECK(d.delay <= ceiling);
    total += d.delay;
    ceiling = std::min(ceiling * 2, std::chrono::milliseconds(3200));
    now += d.delay;
  }
  // Ten ceilings sum to 100+200+...+3200*5 = 22300 ms; full jitter averages half of that.
  CHECK(total > 3000ms);
}

TEST_CASE("reconnect: a stable connection resets the backoff", "[ws][fsm]") {
  reconnect_fsm fsm(policy());
  auto now = clk::now();
  for (int i = 0; i < 5; ++i) fsm.next(dropped(1ms), now);
  CHECK(fsm.attempts() == 5);
  auto d = fsm.next(dropped(6s), now);
  CHECK(d.attempt == 1);
  CHECK(d.delay <= 100ms);
}

TEST_CASE("reconnect: flapping, healthy short connections decay the backoff, silent ones do not", "[ws][fsm]") {
  // Three outages of four failed attempts each, separated by connections of 2 s (under
  // stable_after): with traffic (a rolling restart) the backoff decays at each connection, without
  // (accept, then drop) it runs on.
  struct row {
    const char* what;
    bool traffic;
    std::uint32_t first_attempt_of_third_outage;
    std::uint32_t attempts_at_end;
  };
  const row rows[] = {
      {"messages came back: decays", true, 4, 8},
      {"nothing came back: grows", false, 10, 14},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    reconnect_fsm fsm(policy());
    auto now = clk::now();
    attempt_outcome refused;
    refused.error = boost::asio::error::connection_refused;
    std::uint32_t third_first = 0;
    for (int outage = 0; outage < 3; ++outage) {
      if (outage > 0) {
        auto up = dropped(2s);
        up.traffic = r.traffic;
        auto d = fsm.next(up, now);
        REQUIRE(d.retry);
        if (outage == 2) third_first = d.attempt;
        now += d.delay;
      }
      for (int i = 0; i < 4; ++i) {
        auto d = fsm.next(refused, now);
        REQUIRE(d.retry);
        now += d.delay;
      }
    }
    CHECK(third_first == r.first_attempt_of_third_outage);
    CHECK(fsm.attempts() == r.attempts_at_end);
  }
}

TEST_CASE("reconnect: fatal failures stop unless the policy opts in", "[ws][fsm]") {
  auto now = clk::now();
  for (unsigned status : {401u, 403u, 404u, 400u}) {
    reconnect_fsm fsm(policy());
    attempt_outcome o;
    o.error = tether::error::handshake_rejected;
    o.http_status = status;
    auto d = fsm.next(o, now);
    CHECK(!d.retry);
    CHECK(d.error == tether::error::handshake_rejected);
  }
  reconnect_fsm fsm(policy());
  attempt_outcome pv;
  pv.opened = true;
  pv.close_code = 1008;
  auto d = fsm.next(pv, now);
  CHECK(!d.retry);
  CHECK(d.error == tether::error::policy_violation);

  attempt_outcome sub;
  sub.error = tether::error::subprotocol_mismatch;
  CHECK(!reconnect_fsm(policy()).next(sub, now).retry);

  auto p = policy();
  p.retry_fatal = true;
  reconnect_fsm lenient(p);
  attempt_outcome o;
  o.error = tether::error::handshake_rejected;
  o.http_status = 401;
  CHECK(lenient.next(o, now).retry);
}

TEST_CASE("reconnect: server codes 1001/1011/1012/1013 and 1006 retry, 1000 per option", "[ws][fsm]") {
  auto now = clk::now();
  for (std::uint16_t code : {std::uint16_t{1001}, std::uint16_t{1011}, std::uint16_t{1012}, std::uint16_t{1013}}) {
    reconnect_fsm fsm(policy());
    attempt_outcome o;
    o.opened = true;
    o.close_code = code;
    CHECK(fsm.next(o, now).retry);
  }
  CHECK(reconnect_fsm(policy()).next(dropped(1s), now).retry);
  attempt_outcome normal;
  normal.opened = true;
  normal.close_code = 1000;
  CHECK(reconnect_fsm(policy()).next(normal, now).retry);
  auto p = policy();
  p.on_normal_close = false;
  auto d = reconnect_fsm(p).next(normal, now);
  CHECK(!d.retry);
  CHECK(!d.error);
}

TEST_CASE("reconnect: Retry-After is a floor, capped", "[ws][fsm]") {
  auto now = clk::now();
  attempt_outcome o;
  o.error = tether::error::handshake_rejected;
  o.http_status = 503;
  o.retry_after = 2s;
  auto d = reconnect_fsm(policy()).next(o, now);
  REQUIRE(d.retry);
  CHECK(d.delay >= 2000ms);
  auto p = policy();
  p.max_retry_after = 5s;
  o.retry_after = 3600s;
  d = reconnect_fsm(p).next(o, now);
  CHECK(d.delay == 5000ms);
}

TEST_CASE("reconnect: max attempts and disabled policy", "[ws][fsm]") {
  auto p = policy();
  p.backoff.max_attempts = 2;
  reconnect_fsm fsm(p);
  auto now = clk::now();
  CHECK(fsm.next(dropped(1ms), now).retry);
  CHECK(fsm.next(dropped(1ms), now).retry);
  auto d = fsm.next(dropped(1ms), now);
  CHECK(!d.retry);
  CHECK(d.error == tether::error::retries_exhausted);

  auto off = policy();
  off.enabled = false;
  d = reconnect_fsm(off).next(dropped(1ms), now);
  CHECK(!d.retry);
  CHECK(d.error == boost::asio::error::connection_reset);
}
