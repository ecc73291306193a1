// One connection's decisions (ws/detail/session_rules.hpp): the upgrade's verdict, how an open
// connection ended, when a silent peer is dead; and the cause a reconnection reports.
#include <tether/ws/detail/reconnect_fsm.hpp>
#include <tether/ws/detail/session_rules.hpp>

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace td = tether::ws::detail;
using tether::error;
using tether::error_code;
using namespace std::chrono_literals;

TEST_CASE("ws session rules: the answer to the upgrade", "[ws][session_rules]") {
  const auto now = std::chrono::system_clock::time_point{} + 24h * 365 * 50;
  const error_code reset = boost::asio::error::connection_reset;
  const std::vector<std::string> chat = {"chat.v2", "chat.v1"};
  struct row {
    const char* name;
    td::handshake_answer answer;
    bool offer_protocols, offer_deflate;
    error_code ec;
    unsigned status;
    std::optional<std::chrono::seconds> retry_after;
    bool deflate, close_socket;
  };
  const std::vector<row> rows = {
      {"101, nothing negotiated", {}, false, false, {}, 0, {}, false, false},
      {"101 with an offered subprotocol", {{}, false, 0, "", {"chat.v1"}, {}}, true, false, {}, 0, {}, false, false},
      {"a subprotocol not offered", {{}, false, 0, "", {"chat.v3"}, {}}, true, false,
       make_error_code(error::subprotocol_mismatch), 0, {}, false, true},
      {"a subprotocol when none was offered", {{}, false, 0, "", {"chat.v1"}, {}}, false, false,
       make_error_code(error::subprotocol_mismatch), 0, {}, false, true},
      {"two subprotocols chosen", {{}, false, 0, "", {"chat.v1", "chat.v2"}, {}}, true, false,
       make_error_code(error::subprotocol_mismatch), 0, {}, false, true},
      {"permessage-deflate offered and accepted",
       {{}, false, 0, "", {}, {"permessage-deflate; server_no_context_takeover"}}, false, true, {}, 0, {}, true, false},
      {"permessage-deflate bare", {{}, false, 0, "", {}, {"permessage-deflate"}}, false, true, {}, 0, {}, true, false},
      {"permessage-deflate not offered", {{}, false, 0, "", {}, {"permessage-deflate"}}, false, false,
       make_error_code(error::extension_mismatch), 0, {}, false, true},
      {"an unknown extension", {{}, false, 0, "", {}, {"x-webkit-deflate-frame"}}, false, true,
       make_error_code(error::extension_mismatch), 0, {}, false, true},
      {"a name that only starts like it", {{}, false, 0, "", {}, {"permessage-deflatex"}}, false, true,
       make_error_code(error::extension_mismatch), 0, {}, false, true},
      {"two extensions in one value", {{}, false, 0, "", {}, {"permessage-deflate, x-other"}}, false, true,
       make_error_code(error::extension_mismatch), 0, {}, false, true},
      {"permessage-deflate twice", {{}, false, 0, "", {}, {"permessage-deflate", "permessage-deflate"}}, false, true,
       make_error_code(error::extension_mismatch), 0, {}, false, true},
      {"declined with 503 and Retry-After", {{}, true, 503, "120", {}, {}}, false, false,
       make_error_code(error::handshake_rejected), 503, 120s, false, false},
      {"declined with 401", {{}, true, 401, "", {}, {}}, false, false, make_error_code(error::handshake_rejected),
       401, {}, false, false},
      {"declined with a Retry-After that is no time", {{}, true, 429, "soon", {}, {}}, false, false,
       make_error_code(error::handshake_rejected), 429, {}, false, false},
      {"a web page too large to read whole", {reset, false, 200, "", {}, {}}, false, false,
       make_error_code(error::handshake_rejected), 200, {}, false, false},
      {"reset before any response", {reset, false, 0, "", {}, {}}, false, false, reset, 0, {}, false, false},
      {"reset after a 101 was seen", {reset, false, 101, "", {}, {}}, false, false, reset, 0, {}, false, false},
      {"a timeout the client set", {make_error_code(error::handshake_timeout), false, 0, "", {}, {}}, false, false,
       make_error_code(error::handshake_timeout), 0, {}, false, false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    const td::handshake_offer offer{r.offer_protocols ? &chat : nullptr, r.offer_deflate};
    const auto v = td::judge_handshake(r.answer, offer, now);
    CHECK(v.ec == r.ec);
    CHECK(v.status == r.status);
    CHECK(v.retry_after == r.retry_after);
    CHECK(v.deflate == r.deflate);
    CHECK(v.close_socket == r.close_socket);
  }
}

TEST_CASE("ws session rules: how an open connection ended", "[ws][session_rules]") {
  const error_code reset = boost::asio::error::connection_reset;
  const error_code pong = make_error_code(error::pong_timeout);
  struct row {
    const char* name;
    td::session_facts facts;
    error_code error;
    std::uint16_t code;
  };
  const std::vector<row> rows = {
      {"the server closed with 1001", {true, 1001, {}, 1006, {}, false, 1000}, {}, 1001},
      {"the server closed with no code", {true, 1005, {}, 1006, {}, false, 1000}, {}, 1000},
      {"the server closed with 4000", {true, 4000, {}, 1006, {}, false, 1000}, {}, 4000},
      {"the socket was reset", {false, 0, reset, 1006, {}, false, 1000}, reset, 1006},
      {"a message too big", {false, 0, reset, 1009, {}, false, 1000}, reset, 1009},
      {"the client failed it: no pong", {false, 0, reset, 1006, pong, false, 1000}, pong, 1006},
      {"we closed with 4001, the peer echoed it", {true, 4001, {}, 1006, {}, true, 4001}, {}, 4001},
      {"we closed with 4001, the peer gave no code", {true, 1005, {}, 1006, {}, true, 4001}, {}, 4001},
      {"we closed, the peer answered 1000", {true, 1000, {}, 1006, {}, true, 4001}, {}, 1000},
      {"we closed, but the peer went silent first", {true, 1000, {}, 1006, pong, true, 4001}, {}, 1000},
      {"we closed and the socket was reset", {false, 0, reset, 1006, {}, true, 1000}, reset, 1006},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    const auto e = td::judge_session_end(r.facts);
    CHECK(e.error == r.error);
    CHECK(e.close_code == r.code);
  }
}

TEST_CASE("ws session rules: keepalive and a silent peer", "[ws][session_rules]") {
  const auto t = std::chrono::steady_clock::time_point{} + 1h;
  struct row {
    const char* name;
    std::chrono::steady_clock::time_point last_rx;
    bool reader_paused;
    std::size_t buffered;
    bool dead;
  };
  const row rows[] = {
      {"nothing since the ping", t - 1s, false, 0, true},
      {"a byte at the very instant of the ping", t, false, 0, false},
      {"bytes after the ping", t + 10ms, false, 0, false},
      {"silent, but the client stopped reading", t - 1s, true, 0, false},
      {"silent, but bytes wait unread", t - 1s, false, 5, false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(td::keepalive::peer_dead(r.last_rx, t, r.reader_paused, r.buffered) == r.dead);
  }
  CHECK(td::keepalive{20s, 10s}.pings());
  CHECK(td::keepalive{20s, 10s}.checks_pong());
  CHECK_FALSE(td::keepalive{0s, 10s}.pings());
  CHECK_FALSE(td::keepalive{-1s, 10s}.pings());
  CHECK_FALSE(td::keepalive{20s, 0s}.checks_pong());
}

TEST_CASE("ws session rules: the cause a reconnection reports", "[ws][session_rules]") {
  const error_code reset = boost::asio::error::connection_reset;
  struct row {
    const char* name;
    error_code error;
    bool opened;
    error_code cause;
  };
  const row rows[] = {
      {"an open connection the server closed normally", {}, true, make_error_code(error::closed_by_server)},
      {"an open connection that was reset", reset, true, reset},
      {"an attempt that failed", reset, false, reset},
      {"an attempt refused at the upgrade", make_error_code(error::handshake_rejected), false,
       make_error_code(error::handshake_rejected)},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    td::attempt_outcome out;
    out.error = r.error;
    out.opened = r.opened;
    CHECK(td::reconnect_cause(out) == r.cause);
  }
}
