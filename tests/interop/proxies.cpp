// Interop: ws::client and transfer::manager through real proxies nobody here wrote, started on
// loopback by the tests: tinyproxy (HTTP CONNECT, with and without Basic auth) and microsocks
// (SOCKS5, with and without username/password). Each proxy's outgoing connections are bound
// to 127.0.0.3, so the servers can tell that a connection came through the proxy.
#include "fixtures/certs.hpp"
#include "fixtures/http_server.hpp"
#include "fixtures/tls_terminator.hpp"
#include "fixtures/ws_server.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/transfer_helpers.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <thread>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {

constexpr const char* via = "127.0.0.3";  // the proxies' outgoing address
const std::string secret = "s3cr3t-Pa55";  // the proxies' password: must never show

std::uint16_t free_port() {
  asio::io_context ioc;
  asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

/// Waits until something accepts on 127.0.0.1:`port` (the proxies print nothing when ready):
/// a connect attempt every 10 ms, at most `limit`.
bool wait_listening(std::uint16_t port, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  asio::io_context ioc;
  while (std::chrono::steady_clock::now() < until) {
    asio::ip::tcp::socket s(ioc);
    error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) return true;
    std::this_thread::sleep_for(10ms);  // readiness poll of a foreign process, not test sync
  }
  return false;
}

struct tls_setup {
  std::string dir = test::make_temp_dir("tether-proxy-tls-");
  test::tls_files files = test::make_test_certificates(dir, {"localhost"}, {"127.0.0.1"});
};
const tls_setup& certs() {
  static tls_setup s;
  return s;
}

// tinyproxy_tls: tinyproxy with Basic auth behind a TLS front (an https:// proxy).
enum class kind { tinyproxy, tinyproxy_auth, tinyproxy_tls, microsocks, microsocks_auth };

/// A proxy process for one test (and its TLS front for tinyproxy_tls).
class proxy_peer {
 public:
  explicit proxy_peer(kind k) : kind_(k), dir_(test::make_temp_dir("tether-proxy-")), port_(free_port()) {
    std::vector<std::string> args;
    if (k == kind::tinyproxy || k == kind::tinyproxy_auth || k == kind::tinyproxy_tls) {
      std::ofstream conf(dir_ + "/tinyproxy.conf");
      conf << "Port " << port_ << "\nListen 127.0.0.1\nBind " << via << "\nTimeout 30\nMaxClients 20\n"
           << "LogLevel Connect\nAllow 127.0.0.1\n";
      if (k != kind::tinyproxy) conf << "BasicAuth alice " << secret << "\n";
      conf.close();
      args = {"/usr/bin/tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"};
    } else {
      args = {"/usr/bin/microsocks", "-i", "127.0.0.1", "-p", std::to_string(port_), "-b", via};
      if (k == kind::microsocks_auth) args.insert(args.end(), {"-u", "alice", "-P", secret});
    }
    proc_ = test::child::spawn(args, dir_ + "/out.txt", dir_ + "/err.txt");
    REQUIRE(wait_listening(port_));
    if (k == kind::tinyproxy_tls) front_.emplace(certs().files.cert_file, certs().files.key_file, port_);
  }
  ~proxy_peer() {
    proc_.kill_now();
    std::error_code ig;
    std::filesystem::remove_all(dir_, ig);
  }
  proxy_peer(const proxy_peer&) = delete;
  proxy_peer& operator=(const proxy_peer&) = delete;

  bool needs_auth() const { return kind_ != kind::tinyproxy && kind_ != kind::microsocks; }
  std::uint16_t port() const { return port_; }  ///< the proxy's own (under any TLS front)
  bool is_socks() const { return kind_ == kind::microsocks || kind_ == kind::microsocks_auth; }
  /// The proxy's URL: with the right credentials when it needs them, or with `password`.
  std::string url(const std::string& password) const {
    // microsocks without auth is used with local resolution, with auth with remote resolution.
    const std::string scheme = kind_ == kind::microsocks ? "socks5"
                               : is_socks()              ? "socks5h"
                               : front_                  ? "https"
                                                         : "http";
    const std::string auth = password.empty() ? "" : "alice:" + password + "@";
    return scheme + "://" + auth + "127.0.0.1:" + std::to_string(front_ ? front_->port() : port_);
  }
  std::string url() const { return url(needs_auth() ? secret : ""); }
  std::string name() const {
    switch (kind_) {
      case kind::tinyproxy: return "tinyproxy";
      case kind::tinyproxy_auth: return "tinyproxy with Basic auth";
      case kind::tinyproxy_tls: return "tinyproxy with Basic auth behind TLS (https://)";
      case kind::microsocks: return "microsocks";
      case kind::microsocks_auth: return "microsocks with user/password";
    }
    return "?";
  }

 private:
  kind kind_;
  std::string dir_;
  std::uint16_t port_;
  test::child proc_;
  std::optional<test::tls_terminator> front_;
};

/// Every log line of a run, to check that no secret shows.
struct log_capture {
  std::mutex mu;
  std::vector<std::string> lines;
  net::logger logger() {
    return {[this](net::log_level, std::string_view s) {
              std::lock_guard lk(mu);
              lines.emplace_back(s);
            },
            net::log_level::trace};
  }
  bool mentions(const std::string& needle) {
    std::lock_guard lk(mu);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
};

error_code echo_once(const ws::options& o, std::string* echoed = nullptr) {
  return test::echo_once(o, "through the proxy", echoed);
}

kind each_kind() {
  return GENERATE(kind::tinyproxy, kind::tinyproxy_auth, kind::tinyproxy_tls, kind::microsocks, kind::microsocks_auth);
}

}  // namespace

TEST_CASE("proxies: a ws and a wss echo session through each proxy, TLS verified for the origin", "[interop][proxy]") {
  proxy_peer proxy(each_kind());
  INFO(proxy.name());
  log_capture logs;

  test::ws_server plain;
  auto o = test::fast_options(plain.url("/", "localhost"));
  o.proxy.url = proxy.url();
  o.tls.ca_file = certs().files.ca_file;  // an https:// proxy is verified with it
  o.log = logs.logger();
  std::string echoed;
  CHECK(!echo_once(o, &echoed));
  CHECK(echoed == "through the proxy");
  REQUIRE(plain.requests().size() == 1);
  CHECK(plain.requests()[0].peer == via);

  test::ws_server tls({true, certs().files.cert_file, certs().files.key_file});
  auto t = test::fast_options(tls.url("/", "localhost"));
  t.proxy.url = proxy.url();
  t.tls.ca_file = certs().files.ca_file;
  t.log = logs.logger();
  echoed.clear();
  CHECK(!echo_once(t, &echoed));
  CHECK(echoed == "through the proxy");
  REQUIRE(tls.requests().size() == 1);
  CHECK(tls.requests()[0].peer == via);
  // The origin's name is verified inside the tunnel: a certificate for another name fails
  // even though the proxy is reached by address.
  t.tls.ca_file.clear();
  CHECK(is_tls_verification_failure(echo_once(t)));

  CHECK(!logs.mentions(secret));
}

TEST_CASE("proxies: an http and an https download through each proxy are cut, resumed with Range, and exact", "[interop][proxy]") {
  proxy_peer proxy(each_kind());
  const bool https = GENERATE(false, true);
  INFO(proxy.name() << (https ? ", https" : ", http"));
  log_capture logs;
  test::http_server s;
  s.add_content("/f", 2'000'000);
  s.set_fault({.count = 1, .drop_after = 600'000});
  // https: TLS from the client to a front on loopback (verified for "localhost" and pinned),
  // plain from the front to the server.
  std::optional<test::tls_terminator> front;
  if (https) front.emplace(certs().files.cert_file, certs().files.key_file, s.port());
  test::transfer_env env;
  auto o = env.options();
  o.proxy.url = proxy.url();
  o.log = logs.logger();
  o.tls.ca_file = certs().files.ca_file;
  o.tls.pinned_public_keys = {net::public_key_pin_of_pem_file(certs().files.cert_file).value()};
  transfer::manager m(env.pool.get_executor(), o);
  const auto req = env.download(https ? front->url("/f") : s.url("/f"), "f.bin");
  const auto r = test::download(m, req, "via-proxy");
  INFO(r.message);
  REQUIRE(r.outcome == transfer::outcome::success);
  CHECK(test::read_file(req.file) == s.content("/f"));
  CHECK(r.attempts == 2);
  std::vector<test::http_request_record> gets;
  for (auto& rec : s.requests())
    if (rec.method == "GET") gets.push_back(rec);
  REQUIRE(gets.size() == 2);
  CHECK(gets[1].status == 206);
  CHECK(gets[1].headers.count("range") == 1);
  // Both connections came through the proxy.
  const auto peers = https ? front->peers() : std::vector<std::string>{gets[0].peer, gets[1].peer};
  CHECK(peers == std::vector<std::string>{via, via});
  CHECK(!logs.mentions(secret));
  CHECK(r.message.find(secret) == std::string::npos);
}

TEST_CASE("proxies: missing or wrong credentials are proxy_auth_required, never retried, never shown", "[interop][proxy]") {
  proxy_peer proxy(GENERATE(kind::tinyproxy_auth, kind::tinyproxy_tls, kind::microsocks_auth));
  INFO(proxy.name());
  const std::string wrong = "wrong-" + secret;
  for (const std::string& password : {std::string{}, wrong}) {
    log_capture logs;
    test::ws_server plain;
    auto o = test::fast_options(plain.url());
    o.proxy.url = proxy.url(password);
    o.tls.ca_file = certs().files.ca_file;
    o.log = logs.logger();
    const auto ec = echo_once(o);
    CHECK(ec == error::proxy_auth_required);
    CHECK(plain.requests().empty());
    CHECK(logs.mentions(proxy.url("").substr(0, proxy.url("").find(':'))));  // the proxy is named
    CHECK(!logs.mentions(wrong));

    test::http_server s;
    s.add_content("/f", 1000);
    test::transfer_env env;
    auto to = env.options();
    to.proxy.url = proxy.url(password);
    to.tls.ca_file = certs().files.ca_file;
    to.log = logs.logger();
    transfer::manager m(env.pool.get_executor(), to);
    const auto r = test::download(m, env.download(s.url("/f"), "f.bin"), "refused");
    CHECK(r.outcome == transfer::outcome::failed);
    CHECK(r.error == error::proxy_auth_required);
    CHECK(r.attempts == 1);
    CHECK(r.message.find("127.0.0.1") != std::string::npos);
    CHECK(r.message.find(wrong) == std::string::npos);
    CHECK(r.message.find("alice") == std::string::npos);
    CHECK(!logs.mentions(wrong));
  }
}

TEST_CASE("proxies: an https proxy is verified for its own name, and the server's pins are not applied to it", "[interop][proxy]") {
  proxy_peer proxy(kind::tinyproxy_tls);
  test::http_server s;
  s.add_content("/f", 50'000);
  // A front whose certificate names another host (and comes from another CA).
  const std::string other_dir = test::make_temp_dir("tether-proxy-other-");
  const auto other = test::make_test_certificates(other_dir, {"elsewhere.test"}, {});
  test::tls_terminator misnamed(other.cert_file, other.key_file, proxy.port());
  const std::string misnamed_url = "https://alice:" + secret + "@127.0.0.1:" + std::to_string(misnamed.port());

  struct row {
    const char* what;
    std::string proxy_url;
    std::string ca_file;
    bool ok;
  };
  const row rows[] = {
      {"trusted, named", proxy.url(), certs().files.ca_file, true},
      {"untrusted", proxy.url(), "", false},
      {"trusted, misnamed", misnamed_url, other.ca_file, false},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    log_capture logs;
    test::ws_server plain;
    auto o = test::fast_options(plain.url());
    o.proxy.url = r.proxy_url;
    o.tls.ca_file = r.ca_file;
    o.log = logs.logger();
    const auto ec = echo_once(o);
    CHECK(!ec == r.ok);
    if (!r.ok) {
      CHECK(is_tls_verification_failure(ec));
      CHECK(plain.requests().empty());
      CHECK(logs.mentions("TLS with proxy https://127.0.0.1:"));
    }

    test::transfer_env env;
    auto to = env.options();
    to.proxy.url = r.proxy_url;
    to.tls.ca_file = r.ca_file;
    // Pins belong to the server (here a plain http one), never to the proxy.
    to.tls.pinned_public_keys = {net::public_key_pin_of_pem_file(other.cert_file).value()};
    to.log = logs.logger();
    transfer::manager m(env.pool.get_executor(), to);
    const auto req = env.download(s.url("/f"), "f.bin");
    const auto d = test::download(m, req, "via-https-proxy");
    INFO(d.message);
    if (r.ok) {
      CHECK(d.outcome == transfer::outcome::success);
      CHECK(test::read_file(req.file) == s.content("/f"));
    } else {
      CHECK(d.outcome == transfer::outcome::failed);
      CHECK(is_tls_verification_failure(d.error));
      CHECK(d.attempts == 1);
      CHECK(d.message.find("TLS with proxy https://127.0.0.1:") != std::string::npos);
    }
    CHECK(!logs.mentions(secret));
    CHECK(d.message.find(secret) == std::string::npos);
  }
  std::error_code ig;
  std::filesystem::remove_all(other_dir, ig);
}

TEST_CASE("proxies: an unreachable origin is the proxy's own error (502 from CONNECT, SOCKS reply 5)", "[interop][proxy]") {
  proxy_peer proxy(GENERATE(kind::tinyproxy, kind::microsocks));
  INFO(proxy.name());
  const auto dead = free_port();  // nothing listens there
  auto o = test::fast_options("ws://127.0.0.1:" + std::to_string(dead) + "/");
  o.proxy.url = proxy.url();
  const auto ec = echo_once(o);
  if (proxy.is_socks()) {
    CHECK(ec.category() == socks_category());
    CHECK(ec.value() == 5);  // connection refused
  } else {
    CHECK(ec == error::proxy_failed);
  }
  CHECK(ec == condition::transient);
}

TEST_CASE("proxies: the proxy from the environment is used, no_proxy bypasses it", "[interop][proxy]") {
  proxy_peer proxy(kind::tinyproxy);
  test::ws_server plain;
  auto o = test::fast_options(plain.url("/"));
  // This test alone touches the process environment, on the test's only thread.
  REQUIRE(::setenv("ws_proxy", proxy.url().c_str(), 1) == 0);
  CHECK(!echo_once(o));
  o.proxy.no_proxy = "localhost, 127.0.0.0/8";
  CHECK(!echo_once(o));
  ::unsetenv("ws_proxy");
  const auto reqs = plain.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].peer == via);
  CHECK(reqs[1].peer == "127.0.0.1");
}

#if defined(TETHER_WS_BIN) && defined(TETHER_TRANSFER_BIN)
// The two programs' --proxy and --pin as a user meets them.
namespace {
test::ran program(std::vector<std::string> args, const std::string& input = {}) {
  auto r = test::run_program(args, test::make_temp_dir("tether-proxy-cli-"), input, std::chrono::seconds{30});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  return r;
}
}  // namespace

TEST_CASE("proxies: tether-ws with --proxy and --pin, wrong credentials named without the password", "[interop][proxy][cli]") {
  proxy_peer proxy(GENERATE(kind::tinyproxy_auth, kind::tinyproxy_tls, kind::microsocks_auth));
  INFO(proxy.name());
  test::ws_server tls({true, certs().files.cert_file, certs().files.key_file});
  const auto pin = net::public_key_pin_of_pem_file(certs().files.ca_file).value();
  auto r = program({TETHER_WS_BIN, tls.url("/", "localhost"), "--ca", certs().files.ca_file, "--proxy", proxy.url(),
                    "--pin", pin},
                   "hello\n");
  CHECK(r.code == 0);
  CHECK(r.out == "hello\n");
  CHECK(r.err.find(secret) == std::string::npos);
  REQUIRE(tls.requests().size() == 1);
  CHECK(tls.requests()[0].peer == via);

  const std::string wrong = "not-" + secret;
  r = program({TETHER_WS_BIN, tls.url("/", "localhost"), "--ca", certs().files.ca_file, "--proxy", proxy.url(wrong)},
              "hello\n");
  CHECK(r.code == 1);
  CHECK(r.err.find("the proxy requires authentication") != std::string::npos);
  CHECK(r.err.find(proxy.url("").substr(0, proxy.url("").find("://"))) != std::string::npos);
  CHECK(r.err.find("127.0.0.1:") != std::string::npos);
  CHECK(r.err.find(wrong) == std::string::npos);
  CHECK(r.err.find("alice") == std::string::npos);
  CHECK(tls.requests().size() == 1);
}

TEST_CASE("proxies: tether-ws names a pin mismatch with the chain's pins, a malformed pin is a usage error", "[interop][proxy][cli]") {
  test::ws_server tls({true, certs().files.cert_file, certs().files.key_file});
  const auto wrong_pin = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  auto r = program({TETHER_WS_BIN, tls.url("/", "localhost"), "--ca", certs().files.ca_file, "--proxy", "", "--pin",
                    wrong_pin},
                   "hello\n");
  CHECK(r.code == 1);
  CHECK(r.err.find("no certificate of the verified chain matches a pinned public key") != std::string::npos);
  CHECK(r.err.find(net::public_key_pin_of_pem_file(certs().files.cert_file).value()) != std::string::npos);
  r = program({TETHER_WS_BIN, tls.url("/", "localhost"), "--pin", "sha256//short"});
  CHECK(r.code == 1);
  CHECK(r.err.find("--pin 'sha256//short': expected sha256//BASE64") != std::string::npos);
  r = program({TETHER_WS_BIN, tls.url("/", "localhost"), "--proxy", "ftp://alice:" + secret + "@h"});
  CHECK(r.code == 1);
  CHECK(r.err.find("--proxy: not a proxy URL") != std::string::npos);
  CHECK(r.err.find(secret) == std::string::npos);
}

TEST_CASE("proxies: tether-transfer downloads through --proxy, a refusal exits 3 without the password", "[interop][proxy][cli]") {
  proxy_peer proxy(GENERATE(kind::tinyproxy_auth, kind::tinyproxy_tls, kind::microsocks_auth));
  INFO(proxy.name());
  test::http_server s;
  s.add_content("/f", 300'000);
  const auto dir = std::filesystem::path(test::make_temp_dir("tether-proxy-dl-"));
  auto r = program({TETHER_TRANSFER_BIN, "--state", (dir / "state").string(), "download", s.url("/f"),
                    (dir / "f.bin").string(), "--proxy", proxy.url(), "--ca", certs().files.ca_file});
  CHECK(r.code == 0);
  CHECK(test::read_file(dir / "f.bin") == s.content("/f"));
  CHECK(r.err.find(secret) == std::string::npos);
  CHECK(r.out.find(secret) == std::string::npos);
  REQUIRE(!s.requests().empty());
  CHECK(s.requests().back().peer == via);

  const std::string wrong = "not-" + secret;
  r = program({TETHER_TRANSFER_BIN, "--state", (dir / "state").string(), "download", s.url("/f"),
               (dir / "g.bin").string(), "--proxy", proxy.url(wrong), "--ca", certs().files.ca_file});
  CHECK(r.code == 3);
  CHECK(r.err.find("give user:password in --proxy") != std::string::npos);
  CHECK(r.out.find("the proxy requires authentication") != std::string::npos);
  CHECK(r.err.find(wrong) == std::string::npos);
  CHECK(r.out.find(wrong) == std::string::npos);
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}
#endif
