#include <tether/net/error.hpp>
#include <tether/net/retry.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

TEST_CASE("error: category, messages and conditions", "[net][error]") {
  using tether::condition;
  using tether::error;
  tether::error_code ec = error::outbox_full;
  CHECK(std::string(ec.category().name()) == "tether");
  CHECK(ec.message() == "the outbox is full");
  CHECK(ec == condition::fatal);
  CHECK(ec != condition::transient);
  tether::error_code t = error::pong_timeout;
  CHECK(t == condition::transient);
  tether::error_code net_err = boost::asio::error::connection_reset;
  CHECK(net_err == condition::transient);
  CHECK(tether::error_code{} != condition::transient);
  CHECK(tether::error_code{} != condition::fatal);
  // Every enumerator has its own message.
  for (int i = 1; i <= static_cast<int>(error::inactivity_timeout); ++i)
    CHECK(tether::make_error_code(static_cast<error>(i)).message() != "unknown tether error");
}
