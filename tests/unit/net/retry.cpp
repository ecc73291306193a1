#include <tether/net/retry.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using tether::net::outcome;

TEST_CASE("retry: HTTP status classes", "[net][retry]") {
  using tether::net::classify_status;
  CHECK(classify_status(200) == outcome::success);
  CHECK(classify_status(206) == outcome::success);
  CHECK(classify_status(404) == outcome::rejected);
  CHECK(classify_status(401) == outcome::rejected);
  CHECK(classify_status(416) == outcome::rejected);
  CHECK(classify_status(408) == outcome::retry_later);
  CHECK(classify_status(425) == outcome::retry_later);
  CHECK(classify_status(429) == outcome::retry_later);
  CHECK(classify_status(500) == outcome::retry_later);
  CHECK(classify_status(503) == outcome::retry_later);
  CHECK(classify_status(100) == outcome::failed);
  CHECK(classify_status(999) == outcome::failed);
}

TEST_CASE("retry: errors", "[net][retry]") {
  using tether::net::classify_error;
  CHECK(classify_error({}) == outcome::success);
  CHECK(classify_error(boost::asio::error::connection_refused) == outcome::retry_later);
  CHECK(classify_error(boost::asio::error::eof) == outcome::retry_later);
  CHECK(classify_error(tether::error::pong_timeout) == outcome::retry_later);
  CHECK(classify_error(tether::error::integrity_mismatch) == outcome::failed);
  CHECK(classify_error(tether::error::rejected) == outcome::rejected);
}

TEST_CASE("retry: Retry-After as seconds and HTTP-date, capped", "[net][retry]") {
  using tether::net::parse_retry_after;
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after(" 7 ", now) == 7s);
  CHECK(parse_retry_after("0", now) == 0s);
  CHECK(parse_retry_after("99999999", now, 600s) == 600s);
  CHECK(parse_retry_after("999999999999999999999999999", now, 600s) == 600s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == 60s);
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:51:37 GMT", now) == 120s);
  CHECK(parse_retry_after("Sun Nov  6 08:49:47 1994", now) == 10s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now) == 0s);  // in the past
  CHECK(!parse_retry_after("-5", now));
  CHECK(!parse_retry_after("soon", now));
  CHECK(!parse_retry_after("", now));
  CHECK(!parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now));
  CHECK(!parse_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", now));
  CHECK(!parse_retry_after("1.5", now));
  // Found by fuzz_retry_after: a far-future date must not overflow the clock.
  CHECK(!parse_retry_after("Sun, 06 Nov 3988 08:49:37 GMT", now));
}
