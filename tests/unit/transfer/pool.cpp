// Connection reuse: which idle connections are kept (by table), then against the loopback
// fixture: a tus upload's requests on one connection, successive downloads sharing one, a
// connection the server closed while idle noticed before use, no reuse when none is allowed,
// and TLS sessions resumed (not with pins).
#include "fixtures/http_server.hpp"
#include "fixtures/tls_terminator.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/idle_pool.hpp>

#include <set>

using namespace tether::test;
namespace td = tether::transfer::detail;

TEST_CASE("pool: idle connections kept, bounded, expired, the warmest first", "[transfer][pool]") {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::time_point{} + std::chrono::hours{1};
  std::vector<int> expired;

  SECTION("the most recently kept comes back first, and only for its own origin") {
    td::idle_pool<int> p({8, 4, 15s});
    CHECK(p.put("a", 1, t0).empty());
    CHECK(p.put("a", 2, t0 + 1s).empty());
    CHECK(p.put("b", 3, t0 + 2s).empty());
    CHECK(p.take("a", t0 + 3s, expired) == 2);
    CHECK(p.take("a", t0 + 3s, expired) == 1);
    CHECK_FALSE(p.take("a", t0 + 3s, expired));
    CHECK(p.take("b", t0 + 3s, expired) == 3);
    CHECK(expired.empty());
  }
  SECTION("per origin: the oldest of that origin goes") {
    td::idle_pool<int> p({8, 2, 15s});
    p.put("a", 1, t0);
    p.put("b", 2, t0);
    p.put("a", 3, t0 + 1s);
    CHECK(p.put("a", 4, t0 + 2s) == std::vector<int>{1});
    CHECK(p.size() == 3);
  }
  SECTION("in all: the oldest of any origin goes") {
    td::idle_pool<int> p({2, 2, 15s});
    p.put("a", 1, t0);
    p.put("b", 2, t0 + 1s);
    CHECK(p.put("c", 3, t0 + 2s) == std::vector<int>{1});
    CHECK_FALSE(p.take("a", t0 + 2s, expired));
  }
  SECTION("idle too long: handed back as expired, never out") {
    td::idle_pool<int> p({8, 4, 15s});
    p.put("a", 1, t0);
    p.put("b", 2, t0 + 10s);
    CHECK_FALSE(p.take("a", t0 + 15s, expired));
    CHECK(expired == std::vector<int>{1});
    CHECK(p.take("b", t0 + 24s, expired) == 2);
    expired.clear();
    CHECK(p.put("c", 3, t0 + 100s).empty());
    CHECK(p.clear() == std::vector<int>{3});
  }
  SECTION("nothing may be kept") {
    td::idle_pool<int> none({0, 4, 15s});
    CHECK(none.put("a", 1, t0) == std::vector<int>{1});
    td::idle_pool<int> none_per_origin({8, 0, 15s});
    CHECK(none_per_origin.put("a", 1, t0) == std::vector<int>{1});
    CHECK(none_per_origin.size() == 0);
  }
}

namespace {
std::set<std::uint64_t> connections_of(const http_server& s) {
  std::set<std::uint64_t> out;
  for (const auto& r : s.requests()) out.insert(r.connection);
  return out;
}
}  // namespace

TEST_CASE("pool: a tus upload sends all its requests on one connection", "[transfer][pool]") {
  http_server s;
  s.enable_tus();
  transfer_env env;
  std::string data(1u << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  tt::request req;
  req.url = s.url("/files/");
  req.file = env.dir / "src.bin";
  req.chunk_size = 128u << 10;  // 8 PATCHes
  const auto r = upload(m, req, "up");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  REQUIRE(s.tus_uploads().size() == 1);
  CHECK(s.tus_uploads().begin()->second == data);
  const auto requests = s.requests();
  CHECK(requests.size() >= 10);  // OPTIONS, POST, 8 PATCHes
  CHECK(connections_of(s).size() == 1);
  CHECK(s.connections() == 1);
  CHECK(r.connections_opened == 1);
  CHECK(r.connections_reused == requests.size() - 1);
}

TEST_CASE("pool: successive downloads from one host share a connection, and one the server closed is not used",
          "[transfer][pool]") {
  http_server s;
  s.add_content("/a", 100'000);
  s.add_content("/b", 100'000);
  s.add_content("/c", 100'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto a = download(m, env.download(s.url("/a"), "a.bin"), "a");
  const auto b = download(m, env.download(s.url("/b"), "b.bin"), "b");
  REQUIRE(a.outcome == tt::outcome::success);
  REQUIRE(b.outcome == tt::outcome::success);
  CHECK(a.connections_opened == 1);
  CHECK(b.connections_opened == 0);
  CHECK(b.connections_reused == 1);
  CHECK(s.connections() == 1);
  // The server closes its idle connection: the next download notices before sending, and
  // opens a new one without a failed attempt.
  s.close_connections();
  const auto c = download(m, env.download(s.url("/c"), "c.bin"), "c");
  INFO(c.message);
  REQUIRE(c.outcome == tt::outcome::success);
  CHECK(c.attempts == 1);
  CHECK(c.connections_opened == 1);
  CHECK(c.connections_reused == 0);
  CHECK(s.connections() == 2);
  CHECK(read_file(env.dir / "c.bin") == s.content("/c"));
}

TEST_CASE("pool: with no idle connections allowed, every request has its own", "[transfer][pool]") {
  http_server s;
  s.enable_tus();
  transfer_env env;
  write_file(env.dir / "src.bin", std::string(512u << 10, 'x'));
  auto o = env.options();
  o.max_idle_connections = 0;
  tt::manager m(env.pool.get_executor(), o);
  tt::request req;
  req.url = s.url("/files/");
  req.file = env.dir / "src.bin";
  req.chunk_size = 128u << 10;
  const auto r = upload(m, req, "up");
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(s.connections() == s.requests().size());
  CHECK(r.connections_reused == 0);
}

TEST_CASE("pool: https downloads reuse the connection, and a new one resumes the TLS session unless pins are set",
          "[transfer][pool]") {
  const auto dir = make_temp_dir("tether-resume-");
  const auto files = make_test_certificates(dir, {"localhost"}, {"127.0.0.1"});
  http_server s;
  s.add_content("/f", 100'000);
  tls_terminator front(files.cert_file, files.key_file, s.port());
  transfer_env env;
  auto o = env.options();
  o.tls.ca_file = files.ca_file;
  o.max_idle_connections = 0;  // every transfer needs a new connection: the session is what carries over
  {
    tt::manager m(env.pool.get_executor(), o);
    const auto first = download(m, env.download(front.url("/f"), "1.bin"), "one");
    const auto second = download(m, env.download(front.url("/f"), "2.bin"), "two");
    INFO(first.message << " / " << second.message);
    REQUIRE(first.outcome == tt::outcome::success);
    REQUIRE(second.outcome == tt::outcome::success);
    CHECK(first.tls_resumed == 0);
    CHECK(second.connections_opened == 1);
    CHECK(second.tls_resumed == 1);
    CHECK(read_file(env.dir / "2.bin") == s.content("/f"));
  }
  {
    o.max_idle_connections = 8;
    tt::manager m(env.pool.get_executor(), o);
    download(m, env.download(front.url("/f"), "3.bin"), "three");
    const auto kept = download(m, env.download(front.url("/f"), "4.bin"), "four");
    CHECK(kept.connections_opened == 0);
    CHECK(kept.connections_reused == 1);
  }
  {
    o.max_idle_connections = 0;
    o.tls.pinned_public_keys = {tether::net::public_key_pin_of_pem_file(files.ca_file).value()};
    tt::manager m(env.pool.get_executor(), o);
    download(m, env.download(front.url("/f"), "5.bin"), "five");
    const auto pinned = download(m, env.download(front.url("/f"), "6.bin"), "six");
    REQUIRE(pinned.outcome == tt::outcome::success);
    CHECK(pinned.tls_resumed == 0);  // a full handshake: the pins are checked against its chain
  }
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}

TEST_CASE("pool: a redirect to the same origin is followed on the same connection", "[transfer][pool]") {
  http_server s;
  s.add_content("/real", 100'000);
  s.add_redirect("/a", "/b");
  s.add_redirect("/b", "/real", 307);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, env.download(s.url("/a"), "a.bin"), "a");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(env.dir / "a.bin") == s.content("/real"));
  CHECK(s.requests().size() == 3);
  CHECK(s.connections() == 1);
  CHECK(r.connections_opened == 1);
  CHECK(r.connections_reused == 2);
}
