#include <tether/net/backoff.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;

TEST_CASE("backoff: full jitter under an exponential, capped ceiling", "[net][backoff]") {
  tether::net::backoff_policy p;
  p.initial = 100ms;
  p.max = 1600ms;
  p.min = 10ms;
  tether::net::backoff b(p, 42);
  std::chrono::milliseconds expected_ceiling = 100ms;
  for (int i = 0; i < 10; ++i) {
    CHECK(b.ceiling() == expected_ceiling);
    auto d = b.next();
    REQUIRE(d);
    CHECK(*d >= 10ms);
    CHECK(*d <= expected_ceiling);
    expected_ceiling = std::min(expected_ceiling * 2, std::chrono::milliseconds(1600));
  }
  CHECK(b.attempts() == 10);
  b.reset();
  CHECK(b.ceiling() == 100ms);
}

TEST_CASE("backoff: the same seed gives the same delays", "[net][backoff]") {
  tether::net::backoff a({}, 7), b({}, 7), c({}, 8);
  bool differs = false;
  for (int i = 0; i < 20; ++i) {
    auto x = a.next(), y = b.next(), z = c.next();
    CHECK(x == y);
    differs = differs || x != z;
  }
  CHECK(differs);
}

TEST_CASE("backoff: jitter is spread, not constant", "[net][backoff]") {
  tether::net::backoff_policy p;
  p.initial = 10'000ms;
  p.max = 10'000ms;
  p.min = 0ms;
  tether::net::backoff b(p, 1);
  std::int64_t lo = 1 << 30, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    auto d = b.next()->count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo < 1000);
  CHECK(hi > 9000);
}

TEST_CASE("backoff: max attempts and max elapsed end the run", "[net][backoff]") {
  tether::net::backoff_policy p;
  p.max_attempts = 3;
  tether::net::backoff b(p, 1);
  CHECK(b.next());
  CHECK(b.next());
  CHECK(b.next());
  CHECK(!b.next());
  tether::net::backoff_policy q;
  q.max_elapsed = 1000ms;
  tether::net::backoff c(q, 1);
  CHECK(c.next(999ms));
  CHECK(!c.next(1000ms));
}

TEST_CASE("backoff: huge attempt counts do not overflow", "[net][backoff]") {
  tether::net::backoff_policy p;
  p.multiplier = 10;
  tether::net::backoff b(p, 1);
  for (int i = 0; i < 5000; ++i) {
    auto d = b.next();
    REQUIRE(d);
    REQUIRE(*d <= p.max);
  }
}

TEST_CASE("jitter_engine: splitmix64's reference outputs", "[net][backoff]") {
  // The published sequence for seed 0 (the generator's reference implementation).
  tether::net::jitter_engine e(0);
  CHECK(e() == 0xe220a8397b1dcdafULL);
  CHECK(e() == 0x6e789e6aa1b965f4ULL);
  CHECK(e() == 0x06c45d188009454fULL);
}
