// wss:// through the foundation's TLS context: verified by default.
#include "fixtures/certs.hpp"
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>

#include <fstream>
#include <sstream>

#include <tether/net/error.hpp>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {
struct tls_setup {
  std::string dir = test::make_temp_dir("tether-tls-");
  test::tls_files good = test::make_test_certificates(dir + "/good", {"localhost"}, {"127.0.0.1"});
  test::tls_files other = test::make_test_certificates(dir + "/other", {"other.example"}, {});
  // A second CA's certificate for localhost, for the chains pinning must see through.
  test::tls_files third = test::make_test_certificates(dir + "/third", {"localhost"}, {"127.0.0.1"});
};
tls_setup& certs() {
  static tls_setup s;
  return s;
}

error_code connect_once(const ws::options& o, std::string* echoed = nullptr) {
  return test::echo_once(o, "over tls", echoed);
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

namespace {
std::string pin_of(const std::string& pem) { return net::public_key_pin_of_pem_file(pem).value(); }
std::string cat_files(const std::string& out, const std::vector<std::string>& in) {
  std::ofstream o(out);
  for (const auto& f : in) o << std::ifstream(f).rdbuf();
  return out;
}
}  // namespace

TEST_CASE("tls pins: the leaf's pin passes, a backup pin of the CA passes, both spellings", "[ws][tls][pin]") {
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().good.ca_file;
  o.tls.pinned_public_keys = {pin_of(certs().good.cert_file)};
  std::string echoed;
  CHECK(!connect_once(o, &echoed));
  CHECK(echoed == "over tls");
  // Rotation: an old pin that no longer matches, and the CA's pin as the backup.
  auto ca_pin = pin_of(certs().good.ca_file);
  o.tls.pinned_public_keys = {pin_of(certs().other.cert_file), "sha256/" + ca_pin.substr(8)};
  const auto ec = connect_once(o);
  INFO(ec.message());
  CHECK(!ec);
}

TEST_CASE("tls pins: a wrong pin fails with pin_mismatch although the chain is trusted, listing the chain's pins", "[ws][tls][pin]") {
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().good.ca_file;
  o.tls.pinned_public_keys = {pin_of(certs().other.cert_file)};
  std::vector<std::string> logs;
  o.log = {[&](net::log_level, std::string_view s) { logs.emplace_back(s); }, net::log_level::error};
  o.reconnect.enabled = true;  // not retried: run ends with the error itself
  asio::io_context ioc;
  error_code result;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), o);
    c.async_run([&](error_code ec) { result = ec; });
    auto d = co_await test::next_of<ws::disconnected>(c);
    CHECK(d.error == error::pin_mismatch);
  }());
  CHECK(result == error::pin_mismatch);
  CHECK(result == condition::fatal);
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].find(pin_of(certs().good.cert_file)) != std::string::npos);
  CHECK(logs[0].find(pin_of(certs().good.ca_file)) != std::string::npos);
}

TEST_CASE("tls pins: a pinned certificate appended to a chain counts only when it is part of the verified chain", "[ws][tls][pin]") {
  // The server sends the third CA's leaf with the pinned (good) CA certificate appended.
  const auto chain = cat_files(certs().dir + "/appended.pem", {certs().third.cert_file, certs().good.ca_file});
  test::ws_server server({true, chain, certs().third.key_file});
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.pinned_public_keys = {pin_of(certs().good.ca_file)};
  // Untrusted chain: verification fails first, the appended pinned certificate does not help.
  o.tls.ca_file = certs().good.ca_file;
  auto ec = connect_once(o);
  CHECK(is_tls_verification_failure(ec));
  // Trusted through the third CA: the verified chain is leaf + third CA, the pin is not in it.
  o.tls.ca_file = cat_files(certs().dir + "/both-cas.pem", {certs().good.ca_file, certs().third.ca_file});
  ec = connect_once(o);
  CHECK(ec == error::pin_mismatch);
  // The same server with the third CA's pin passes.
  o.tls.pinned_public_keys = {pin_of(certs().third.ca_file)};
  CHECK(!connect_once(o));
}

TEST_CASE("tls pins: a malformed pin is invalid_argument, with insecure_skip_verify the leaf is checked", "[ws][tls][pin]") {
  test::ws_server server({true, certs().other.cert_file, certs().other.key_file});
  auto o = test::fast_options(server.url());
  o.tls.pinned_public_keys = {"sha256//not-base64"};
  CHECK(connect_once(o) == error::invalid_argument);
  o.tls.insecure_skip_verify = true;
  o.tls.pinned_public_keys = {pin_of(certs().other.cert_file)};
  CHECK(!connect_once(o));
  o.tls.pinned_public_keys = {pin_of(certs().good.cert_file)};
  CHECK(connect_once(o) == error::pin_mismatch);
}

TEST_CASE("tls: messages of every size, all in flight at once, come back whole and in order", "[ws][tls]") {
  // Over TLS a read takes one record: small messages are taken whole from memory, large ones
  // read straight into their own string (in the memory of large ones sent before), larger
  // ones by Beast, while the writer frames large messages in pieces.
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  server.set_whole_frames(true);
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().good.ca_file;
  test::check_every_size_echoed(o);
}

TEST_CASE("tls: writes that end inside a record leave no byte behind: every send completes and comes back", "[ws][tls]") {
  // While more frames are likely to follow, a write takes whole 16 KiB records and the bytes
  // beyond wait for them (write_extent). Here, at the end of each burst, nothing follows.
  test::ws_server server({true, certs().good.cert_file, certs().good.key_file});
  server.set_whole_frames(true);
  auto o = test::fast_options(server.url("/", "localhost"));
  o.tls.ca_file = certs().good.ca_file;
  const auto of = [](std::initializer_list<std::size_t> sizes, std::size_t copies) {
    std::vector<ws::message> v;
    for (std::size_t i = 0; i < copies; ++i)
      for (auto n : sizes) v.push_back(ws::message::binary(test::pattern(n, static_cast<unsigned>(v.size()))));
    return v;
  };
  SECTION("17 messages of 1 KiB at once: one record and a bit") {
    const auto sent = of({1024}, 17);
    test::check_echoed(sent, test::echo_all(o, sent, sent.size()));
  }
  SECTION("one at a time, each a record and a few bytes, or two and a bit") {
    const auto sent = of({16'380, 20'000, 40'000}, 2);
    test::check_echoed(sent, test::echo_all(o, sent, 1));
  }
  SECTION("300 of 1 KiB, 40 in flight") {
    const auto sent = of({1024}, 300);
    test::check_echoed(sent, test::echo_all(o, sent, 40));
  }
}
