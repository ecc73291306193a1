// wss:// through the foundation's TLS context: verified by default.
#include "fixtures/certs.hpp"
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>

#include <tether/net/error.hpp>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {
struct tls_setup {
  std::string dir = test::make_temp_dir("tether-tls-");
  test::tls_files good = test::make_test_certificates(dir + "/good", {"localhost"}, {"127.0.0.1"});
  test::tls_files other = test::make_test_certificates(dir + "/other", {"other.example"}, {});
};
tls_setup& certs() {
  static tls_setup s;
  return s;
}

error_code connect_once(ws::options o, std::string* echoed = nullptr) {
  asio::io_context ioc;
  error_code result;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    c.async_run([&](error_code ec) { result = ec; });
    auto [ec, ev] = co_await c.async_next_event(test::nothrow);
    if (std::holds_alternative<ws::connected>(ev)) {
      co_await c.async_send_text("over tls", test::nothrow);
      auto m = co_await test::next_of<ws::message>(c);
      if (echoed) *echoed = m.data;
      co_await c.async_close(test::nothrow);
    } else if (auto* d = std::get_if<ws::disconnected>(&ev)) {
      result = d->error;
    }
  }());
  return result;
}
}  // namespace

TEST_CASE("tls: a certificate from an unknown CA is rejected by default, not retried", "[ws][tls]") {
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  auto ec = connect_once(test::fast_options(server.url()));
  CHECK(is_tls_verification_failure(ec));
  CHECK(ec == condition::fatal);
}

TEST_CASE("tls: accepted with the CA file, SNI and host name checked", "[ws][tls]") {
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().good.ca_file;
  std::string echoed;
  CHECK(!connect_once(o, &echoed));
  CHECK(echoed == "over tls");
  // An IP literal is checked against the certificate's IP SAN.
  auto o2 = test::fast_options(server.url("/", "127.0.0.1"));
  o2.tls.ca_file = certs().good.ca_file;
  CHECK(!connect_once(o2));
}

TEST_CASE("tls: a certificate for another host name is rejected", "[ws][tls]") {
  test::ws_server server({true, certs().other.cert_file, certs().other.key_file});
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().other.ca_file;
  auto ec = connect_once(o);
  CHECK(is_tls_verification_failure(ec));
}

TEST_CASE("tls: insecure_skip_verify accepts anything and says so in the log", "[ws][tls]") {
  test::ws_server server({true, certs().other.cert_file, certs().other.key_file});
  auto o = test::fast_options(server.url());
  o.tls.insecure_skip_verify = true;
  std::vector<std::string> logs;
  o.log = {[&](net::log_level, std::string_view s) { logs.emplace_back(s); }, net::log_level::warn};
  CHECK(!connect_once(o));
  REQUIRE(!logs.empty());
  CHECK(logs.front().find("verification is OFF") != std::string::npos);
}

TEST_CASE("tls: a missing CA file is a clear error", "[ws][tls]") {
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  auto o = test::fast_options(server.url());
  o.tls.ca_file = "/nonexistent/ca.pem";
  CHECK(connect_once(o));
}
