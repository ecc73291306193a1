// Envelopes: wire form, typed handlers, request/response, and every kind of bad input.
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <tether/ws/envelope.hpp>

#include <boost/asio/detached.hpp>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace demo {
struct greet {
  static constexpr std::string_view type = "demo.greet";
  std::string name;
  int times = 1;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(greet, name, times)
struct greeting {
  static constexpr std::string_view type = "demo.greeting";
  std::string text;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(greeting, text)
struct unanswered {
  static constexpr std::string_view type = "demo.unanswered";
  int x = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(unanswered, x)
}  // namespace demo

namespace {
std::string nested(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}
ws::message text(std::string s) { return ws::message::text(std::move(s)); }

struct harness {
  asio::io_context ioc;
  ws::client client{ioc.get_executor(), test::fast_options("ws://127.0.0.1:1/")};
  ws::envelope_channel chan{client};
  std::vector<ws::envelope_error> errors;
  harness() {
    chan.on_error([this](const ws::envelope_error& e) { errors.push_back(e); });
  }
};
}  // namespace

TEST_CASE("envelope: wire form with id and reply_to", "[envelope]") {
  ws::envelope e{"demo.greet", nlohmann::json(demo::greet{"ann", 2}), "r-1", "q-9"};
  const auto wire = ws::encode_envelope(e);
  auto j = nlohmann::json::parse(wire);
  CHECK(j["type"] == "demo.greet");
  CHECK(j["payload"]["name"] == "ann");
  CHECK(j["id"] == "r-1");
  CHECK(j["reply_to"] == "q-9");
  auto back = ws::decode_envelope(wire);
  REQUIRE(back.has_value());
  CHECK(back->type == "demo.greet");
  CHECK(back->id == std::optional<std::string>("r-1"));
  CHECK(back->reply_to == std::optional<std::string>("q-9"));
  // No id/reply_to: the keys are absent.
  auto plain = nlohmann::json::parse(ws::encode_envelope({"t", nlohmann::json::object(), {}, {}}));
  CHECK(!plain.contains("id"));
  CHECK(!plain.contains("reply_to"));
}

TEST_CASE("envelope: CBOR in binary frames round-trips", "[envelope]") {
  ws::envelope e{"demo.greet", nlohmann::json(demo::greet{"bo", 3}), "x", {}};
  const auto wire = ws::encode_envelope(e, ws::wire_format::cbor_binary);
  auto back = ws::decode_envelope(wire, ws::wire_format::cbor_binary);
  REQUIRE(back.has_value());
  CHECK(back->payload.get<demo::greet>().times == 3);
  CHECK(ws::decode_envelope("\xff\x00", ws::wire_format::cbor_binary).error() == error::malformed_json);
}

TEST_CASE("envelope: typed handler receives the decoded payload", "[envelope]") {
  harness h;
  std::vector<std::string> got;
  h.chan.on<demo::greet>([&](demo::greet g, const ws::envelope& e) { got.push_back(g.name + ":" + e.type); });
  CHECK(!h.chan.dispatch(text(R"({"type":"demo.greet","payload":{"name":"cy","times":1}})")));
  CHECK(got == std::vector<std::string>{"cy:demo.greet"});
  CHECK(h.errors.empty());
}

TEST_CASE("envelope: unknown type goes to the fallback, or is reported", "[envelope]") {
  harness h;
  CHECK(h.chan.dispatch(text(R"({"type":"nobody.home","payload":{}})")) == error::unknown_type);
  REQUIRE(h.errors.size() == 1);
  CHECK(h.errors[0].type == "nobody.home");
  std::string seen;
  h.chan.on_unknown([&](const ws::envelope& e) { seen = e.type; });
  CHECK(!h.chan.dispatch(text(R"({"type":"nobody.home","payload":{}})")));
  CHECK(seen == "nobody.home");
}

TEST_CASE("envelope: malformed JSON is reported, not thrown", "[envelope][bad]") {
  harness h;
  CHECK(h.chan.dispatch(text(R"({"type":"demo.greet", "payload": )")) == error::malformed_json);
  REQUIRE(h.errors.size() == 1);
  CHECK(h.errors[0].error == error::malformed_json);
}

TEST_CASE("envelope: a missing type is reported", "[envelope][bad]") {
  harness h;
  CHECK(h.chan.dispatch(text(R"({"payload":{}})")) == error::missing_type);
  CHECK(h.chan.dispatch(text(R"([1,2,3])")) == error::missing_type);
  CHECK(h.errors.size() == 2);
}

TEST_CASE("envelope: a non-string type is reported", "[envelope][bad]") {
  harness h;
  CHECK(h.chan.dispatch(text(R"({"type":7,"payload":{}})")) == error::missing_type);
}

TEST_CASE("envelope: a payload that does not decode names the type", "[envelope][bad]") {
  harness h;
  bool called = false;
  h.chan.on<demo::greet>([&](demo::greet, const ws::envelope&) { called = true; });
  CHECK(!h.chan.dispatch(text(R"({"type":"demo.greet","payload":{"name":5}})")));
  CHECK(!called);
  REQUIRE(h.errors.size() == 1);
  CHECK(h.errors[0].error == error::payload_mismatch);
  CHECK(h.errors[0].type == "demo.greet");
  CHECK(!h.errors[0].detail.empty());
}

TEST_CASE("envelope: an oversized document is rejected before parsing", "[envelope][bad]") {
  ws::envelope_limits lim;
  lim.max_bytes = 100;
  CHECK(ws::decode_envelope(std::string(101, ' '), ws::wire_format::json_text, lim).error() == error::json_too_large);
}

TEST_CASE("envelope: 100 levels accepted, 100,000 rejected without a crash", "[envelope][bad]") {
  ws::envelope_limits lim;
  lim.max_depth = 128;
  const std::string ok = R"({"type":"t","payload":)" + nested(99) + "}";
  CHECK(ws::decode_envelope(ok, ws::wire_format::json_text, lim).has_value());
  const std::string deep = R"({"type":"t","payload":)" + nested(100000) + "}";
  CHECK(ws::decode_envelope(deep).error() == error::json_too_deep);
  // Brackets inside strings do not count.
  const std::string in_string = R"({"type":"t","payload":")" + std::string(1000, '[') + R"("})";
  CHECK(ws::decode_envelope(in_string).has_value());
  // CBOR: 100,000 nested arrays.
  std::string cbor(100000, '\x81');
  cbor += '\x01';
  CHECK(ws::decode_envelope(cbor, ws::wire_format::cbor_binary).error() == error::json_too_deep);
}

TEST_CASE("envelope: request/response correlates by id, times out, fails on connection loss", "[envelope][request]") {
  // The fixture echoes. A request comes back as itself; our own handler then answers it with
  // reply_to set, and that answer, echoed, completes the request.
  test::ws_server server;
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    ws::client c(ioc.get_executor(), test::fast_options(server.url()));
    ws::envelope_channel chan(c);
    c.async_run(asio::detached);
    chan.on<demo::greet>([&](demo::greet g, const ws::envelope& e) {
      chan.async_send(demo::greeting{"hello " + g.name}, asio::detached, std::nullopt, e.id);
    });
    std::vector<ws::envelope_error> errors;
    chan.on_error([&](const ws::envelope_error& e) { errors.push_back(e); });
    // The channel's run() must end before the channel and client go away.
    asio::steady_timer run_done(ioc, std::chrono::steady_clock::time_point::max());
    bool ran = false;
    asio::co_spawn(ioc, chan.run(), [&](std::exception_ptr) {
      ran = true;
      run_done.cancel();
    });

    const demo::greet dee{"dee", 1};
    auto reply = co_await chan.request<demo::greeting>(dee, 5s);
    REQUIRE(reply.has_value());
    CHECK(reply->text == "hello dee");
    CHECK(chan.pending_requests() == 0);

    // Nobody answers this type: the request times out cleanly.
    const demo::unanswered u{};
    const auto t0 = std::chrono::steady_clock::now();
    auto timed_out = co_await chan.request<demo::greeting>(u, 200ms);
    CHECK(timed_out.error() == error::request_timeout);
    CHECK(std::chrono::steady_clock::now() - t0 >= 190ms);
    CHECK(chan.pending_requests() == 0);
    CHECK(!errors.empty());  // the echoed request itself was an unknown type: reported

    // The connection drops while a request waits: it fails with connection_lost, not re-sent.
    server.set_behavior(test::ws_behavior::silent);
    server.drop_all();
    asio::steady_timer t(ioc, 50ms);
    t.async_wait([&](error_code) { server.drop_all(); });
    auto lost = co_await chan.request<demo::greeting>(u, 10s);
    CHECK(lost.error() == error::connection_lost);
    co_await c.async_close(test::nothrow);
    if (!ran) co_await run_done.async_wait(test::nothrow);
  }());
}
