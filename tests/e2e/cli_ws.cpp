// tether-ws as a user meets it: what it prints, on which stream, and how it exits, against
// the in-process WebSocket server (plain and TLS) on loopback.
#include "fixtures/certs.hpp"
#include "fixtures/ws_server.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using tether::test::child;
using tether::test::run_program;
using tether::test::slurp;
using tether::test::ws_behavior;
using tether::test::ws_server;

std::filesystem::path scratch() { return tether::test::make_temp_dir("tether-cli-ws-"); }

tether::test::ran ws_cat(const std::vector<std::string>& args, const std::string& input = {}) {
  std::vector<std::string> cmd{TETHER_WS_BIN};
  cmd.insert(cmd.end(), args.begin(), args.end());
  auto r = run_program(cmd, scratch(), input, std::chrono::seconds{30});
  INFO("stderr: " << r.err);
  return r;
}

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

/// A port nothing listens on (a server that was started and stopped).
std::uint16_t dead_port() {
  ws_server s;
  const auto p = s.port();
  s.stop();
  return p;
}

}  // namespace

TEST_CASE("tether-ws: echoes that arrive during the closing handshake are printed", "[cli][ws]") {
  ws_server s;
  const auto r = ws_cat({s.url("/")}, "hi\nthere\n");
  CHECK(r.code == 0);
  CHECK(r.out == "hi\nthere\n");
  // The server's side records the code after it has answered, which the program may not wait for.
  CHECK(s.wait_for([&] { return !s.close_codes().empty(); }));
  CHECK(s.close_codes() == std::vector<std::uint16_t>{1000});
  CHECK(r.err.find("# unconfirmed") == std::string::npos);  // a clean close confirms everything
}

TEST_CASE("tether-ws: a session that never connected exits 1, also with empty stdin", "[cli][ws]") {
  const auto port = std::to_string(dead_port());
  SECTION("a dead port, no reconnect") {
    const auto r = ws_cat({"ws://127.0.0.1:" + port + "/"});
    CHECK(r.code == 1);
    CHECK(r.err.find("cannot connect to 127.0.0.1:" + port) != std::string::npos);
    CHECK(r.err.find("Connection refused") != std::string::npos);
  }
  SECTION("a dead port with --reconnect: stdin closed while not connected") {
    const auto r = ws_cat({"ws://127.0.0.1:" + port + "/", "--reconnect"});
    CHECK(r.code == 1);
    CHECK(r.err.find("# reconnecting attempt=1") != std::string::npos);
    CHECK(r.err.find("stdin ended before any connection was made") != std::string::npos);
  }
  SECTION("an untrusted certificate names the reason and hints at --ca") {
    const auto dir = scratch();
    const auto certs = tether::test::make_test_certificates(dir.string(), {"localhost"}, {"127.0.0.1"});
    ws_server s({.tls = true, .cert_file = certs.cert_file, .key_file = certs.key_file});
    const auto r = ws_cat({s.url("/")});
    CHECK(r.code == 1);
    CHECK(r.err.find("certificate verify failed: unable to get local issuer certificate") != std::string::npos);
    CHECK(r.err.find("--ca FILE") != std::string::npos);
    CHECK(s.received().empty());
  }
  SECTION("a certificate for another name says so") {
    const auto dir = scratch();
    const auto certs = tether::test::make_test_certificates(dir.string(), {"localhost"}, {"127.0.0.1"});
    ws_server s({.tls = true, .cert_file = certs.cert_file, .key_file = certs.key_file, .address = "127.0.0.2"});
    const auto r = ws_cat({"wss://127.0.0.2:" + std::to_string(s.port()) + "/", "--ca", certs.ca_file});
    CHECK(r.code == 1);
    CHECK(r.err.find("certificate verify failed: IP address mismatch") != std::string::npos);
    CHECK(r.err.find("does not name 127.0.0.2") != std::string::npos);
  }
}

TEST_CASE("tether-ws: a failed connection reports its cause once, and the lines that never went out", "[cli][ws]") {
  const auto port = std::to_string(dead_port());
  const auto r = ws_cat({"ws://127.0.0.1:" + port + "/"}, "one\ntwo\n");
  CHECK(r.code == 1);
  CHECK(r.err.find("send failed") == std::string::npos);
  CHECK(r.err.find("Operation canceled") == std::string::npos);
  CHECK(count_of(r.err, "Connection refused") == 1);
  CHECK(r.err.find("# not sent 2") != std::string::npos);
}

TEST_CASE("tether-ws: errors say what and where", "[cli][ws]") {
  SECTION("--ca naming a missing file") {
    const auto r = ws_cat({"ws://127.0.0.1:1/", "--ca", "/nonexistent.pem"});
    CHECK(r.code == 1);
    CHECK(r.err.find("--ca /nonexistent.pem: No such file or directory") != std::string::npos);
  }
  SECTION("a plain web page is not a WebSocket endpoint") {
    ws_server s;
    s.set_behavior(ws_behavior::raw_handshake);
    s.set_raw_handshake("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2000000\r\n\r\n" +
                        std::string(2'000'000, 'x'));
    const auto r = ws_cat({s.url("/")});
    CHECK(r.code == 1);
    CHECK(r.err.find("not a WebSocket endpoint: HTTP 200") != std::string::npos);
  }
  SECTION("a refusal during reconnects shows its status") {
    ws_server s;
    s.set_behavior(ws_behavior::refuse);
    s.set_refuse(502);
    const auto r = ws_cat({s.url("/"), "--reconnect"});
    CHECK(r.code == 1);
    CHECK(r.err.find("cause=the server rejected the WebSocket handshake: HTTP 502") != std::string::npos);
  }
}

TEST_CASE("tether-ws: lines written to a connection that then died are reported unconfirmed", "[cli][ws]") {
  ws_server s;
  s.set_behavior(ws_behavior::silent);  // takes the handshake, then never reads nor answers
  const auto dir = scratch();
  auto c = child::spawn({TETHER_WS_BIN, s.url("/"), "--ping-interval", "0.2", "--pong-timeout", "0.5"}, dir / "out.txt",
                        dir / "err.txt", {}, true);
  c.write_stdin("a\nb\nc\n");  // stdin stays open: the connection's death ends the session
  const int code = c.wait(std::chrono::seconds{30});
  const auto err = slurp(dir / "err.txt");
  INFO("stderr: " << err);
  CHECK(code == 1);
  CHECK(err.find("# unconfirmed 3") != std::string::npos);
  CHECK(err.find("no pong") != std::string::npos);
}

TEST_CASE("tether-ws: a reconnection after the server's normal close names it as the cause", "[cli][ws]") {
  ws_server s;
  const auto dir = scratch();
  auto c = child::spawn({TETHER_WS_BIN, s.url("/"), "--reconnect"}, dir / "out.txt", dir / "err.txt", {}, true);
  c.write_stdin("before\n");  // its echo shows the server's side of the connection is running
  REQUIRE(s.wait_for([&] { return s.received().size() == 1; }));
  s.close_all(1000, "bye");
  REQUIRE(s.wait_for([&] { return s.accepted() == 2 && s.open_connections() == 1; }));
  c.write_stdin("after\n");
  REQUIRE(s.wait_for([&] { return s.received().size() == 2; }));
  c.close_stdin();
  const int code = c.wait(std::chrono::seconds{30});
  const auto err = slurp(dir / "err.txt");
  INFO("stderr: " << err);
  CHECK(code == 0);
  CHECK(err.find("cause=closed by server: 1000") != std::string::npos);
  CHECK(err.find("cause=Success") == std::string::npos);
  CHECK(slurp(dir / "out.txt") == "before\nafter\n");
}

TEST_CASE("tether-ws: usage", "[cli][ws]") {
  SECTION("a bad value names the option and the value") {
    const auto r = ws_cat({"ws://127.0.0.1:1/", "--ping-interval", "abc"});
    CHECK(r.code == 1);
    CHECK(r.err.find("--ping-interval 'abc'") != std::string::npos);
    CHECK(r.out.empty());
  }
  SECTION("an unknown option exits 1") {
    const auto r = ws_cat({"ws://127.0.0.1:1/", "--frobnicate"});
    CHECK(r.code == 1);
    CHECK(r.err.find("unknown option '--frobnicate'") != std::string::npos);
  }
  SECTION("not a ws URL") {
    const auto r = ws_cat({"http://127.0.0.1:1/"});
    CHECK(r.code == 1);
    CHECK(r.err.find("is not a ws:// or wss:// URL") != std::string::npos);
  }
  SECTION("--help on stdout, every option with its default, the exit codes, delivery") {
    const auto r = ws_cat({"--help"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    for (const char* s : {"--header", "--subprotocol", "--ca", "--insecure", "--reconnect", "--ping-interval",
                          "--pong-timeout", "--close-timeout", "default 20", "default 10", "default 5", "EXIT STATUS",
                          "DELIVERY", "at most once", "--version"}) {
      INFO(s);
      CHECK(r.out.find(s) != std::string::npos);
    }
  }
  SECTION("--version") {
    const auto r = ws_cat({"--version"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind("tether-ws ", 0) == 0);
  }
}
