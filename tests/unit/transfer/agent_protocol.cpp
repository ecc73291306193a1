// The agent's protocol and book, without sockets: what each request line is answered with,
// how parameters are checked, who owns what, and which events a session gets.
#include <tether/transfer/detail/agent_book.hpp>
#include <tether/transfer/detail/agent_protocol.hpp>

#include <catch2/catch.hpp>

namespace {

namespace ag = tether::transfer::detail::agent;
namespace tt = tether::transfer;
using json = nlohmann::json;

int code_of(const std::string& line) {
  auto p = ag::parse_call(line, 256);
  if (auto* e = std::get_if<ag::rpc_error>(&p)) return static_cast<int>(e->code);
  return 0;
}

tt::request req(std::string url = "http://h/x", std::string file = "/tmp/x") {
  tt::request r;
  r.url = std::move(url);
  r.file = std::move(file);
  return r;
}

}  // namespace

TEST_CASE("agent protocol: each request line is a call or the JSON-RPC error it is answered with", "[agent][unit]") {
  struct row {
    const char* line;
    int code;  // 0: a call
  };
  const row rows[] = {
      {R"({"jsonrpc":"2.0","id":1,"method":"list"})", 0},
      {R"({"jsonrpc":"2.0","id":"a","method":"get","params":{"id":"x"}})", 0},
      {"not json", -32700},
      {R"({"jsonrpc":"2.0","id":1,"method":"list")", -32700},
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", -32700},
      {R"([{"jsonrpc":"2.0","id":1,"method":"list"}])", -32600},
      {R"("list")", -32600},
      {R"({"jsonrpc":"2.0","method":"list"})", -32600},
      {R"({"jsonrpc":"2.0","id":1.5,"method":"list"})", -32600},
      {R"({"jsonrpc":"2.0","id":null,"method":"list"})", -32600},
      {R"({"jsonrpc":"1.0","id":1,"method":"list"})", -32600},
      {R"({"id":1,"method":"list"})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":""})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":7})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":"list","extra":1})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":"list","params":[1]})", -32602},
  };
  for (const auto& r : rows) {
    INFO(r.line);
    CHECK(code_of(r.line) == r.code);
  }
  CHECK(code_of(std::string(300, ' ')) == -32006);  // longer than the limit given
  // An error keeps the id it could read, so the client can match it.
  auto p = ag::parse_call(R"({"jsonrpc":"1.0","id":"k","method":"list"})", 256);
  REQUIRE(std::holds_alternative<ag::rpc_error>(p));
  const auto line = ag::error_line(std::get<ag::rpc_error>(p));
  const auto j = json::parse(line);
  CHECK(j["id"] == "k");
  CHECK(j["error"]["code"] == -32600);
  CHECK(line.back() == '\n');
}

TEST_CASE("agent protocol: download and upload parameters are checked strictly", "[agent][unit]") {
  struct row {
    const char* params;
    tt::kind kind;
    const char* why;  // empty: accepted
  };
  const row rows[] = {
      {R"({"id":"a","url":"http://h/x","file":"/tmp/x"})", tt::kind::download, ""},
      {R"({"id":"a","url":"http://h/x","file":"/tmp/x","headers":[["Authorization","Bearer t"]],"sha256":"ab"})",
       tt::kind::download, ""},
      {R"({"id":"a","url":"http://h/f/","file":"/tmp/x","protocol":"put","chunk_size":65536})", tt::kind::upload, ""},
      {R"({"id":"a","url":"http://h/x","file":"x"})", tt::kind::download, "absolute path"},
      {R"({"id":"a","url":"http://h/x"})", tt::kind::download, "missing \"file\""},
      {R"({"id":"","url":"http://h/x","file":"/x"})", tt::kind::download, "\"id\" must be"},
      {R"({"url":"http://h/x","file":"/x"})", tt::kind::download, "missing \"id\""},
      {R"({"id":"a","url":"","file":"/x"})", tt::kind::download, "\"url\" must be"},
      {R"({"id":"a","url":"http://h/x","file":"/x","bogus":1})", tt::kind::download, "unknown parameter \"bogus\""},
      {R"({"id":"a","url":"http://h/x","file":"/x","headers":[["A"]]})", tt::kind::download, "[name, value]"},
      {R"({"id":"a","url":"http://h/x","file":"/x","headers":{"A":"b"}})", tt::kind::download, "[name, value]"},
      {R"({"id":"a","url":"http://h/x","file":"/x","protocol":"tus"})", tt::kind::download, "for uploads"},
      {R"({"id":"a","url":"http://h/x","file":"/x","protocol":"ftp"})", tt::kind::upload, "unknown value"},
      {R"({"id":"a","url":"http://h/x","file":"/x","chunk_size":-1})", tt::kind::download, "non-negative"},
      {R"({"id":7,"url":"http://h/x","file":"/x"})", tt::kind::download, "not a string"},
  };
  for (const auto& r : rows) {
    INFO(r.params);
    std::string why;
    auto a = ag::decode_add(json::parse(r.params), r.kind, why);
    if (*r.why == 0) {
      CHECK(a.has_value());
      CHECK(why.empty());
    } else {
      CHECK(!a.has_value());
      CHECK_THAT(why, Catch::Contains(r.why));
    }
  }
  // What the agent keeps decodes to the same request.
  std::string why;
  auto a = ag::decode_add(json::parse(rows[1].params), tt::kind::download, why);
  REQUIRE(a);
  auto again = ag::decode_add(ag::encode_add(tt::kind::download, a->id, a->req), tt::kind::download, why);
  REQUIRE(again);
  CHECK(again->req.headers == a->req.headers);
  CHECK(again->req.sha256 == "ab");
}

TEST_CASE("agent protocol: sessions, ids and event cursors", "[agent][unit]") {
  struct row {
    const char* params;
    bool ok;
  };
  const row sessions[] = {{R"({"session":"app-1.x_y@z"})", true}, {R"({"session":""})", false},
                          {R"({"session":"a b"})", false},        {R"({"session":"../x"})", false},
                          {R"({})", false},                       {R"({"session":"a","x":1})", false}};
  for (const auto& r : sessions) {
    INFO(r.params);
    std::string why;
    CHECK(ag::decode_session(json::parse(r.params), why).has_value() == r.ok);
    CHECK(why.empty() == r.ok);
  }
  std::string why;
  auto e = ag::decode_events(json::parse(R"({"after":5,"wait_ms":999999})"), std::chrono::milliseconds{60'000}, why);
  REQUIRE(e);
  CHECK(e->after == 5);
  CHECK(e->wait == std::chrono::milliseconds{60'000});  // capped
  CHECK(!ag::decode_events(json::parse(R"({"after":"5"})"), std::chrono::milliseconds{1}, why));
  why.clear();
  CHECK(!ag::decode_id(json::parse(R"({"id":""})"), why));
  CHECK(!why.empty());
}

TEST_CASE("agent book: sessions own their transfers and see only theirs", "[agent][unit]") {
  ag::book b({.max_transfers = 2, .max_sessions = 2, .max_events_per_session = 4});
  CHECK(b.claim("a", "x", tt::kind::download, req()) == ag::claim_result::created);
  CHECK(b.dirty());
  CHECK(b.claim("a", "x", tt::kind::download, req()) == ag::claim_result::same);
  CHECK(b.claim("b", "x", tt::kind::download, req()) == ag::claim_result::other_session);
  CHECK(b.claim("b", "y", tt::kind::upload, req()) == ag::claim_result::created);
  CHECK(b.claim("b", "z", tt::kind::upload, req()) == ag::claim_result::limit_reached);
  CHECK(b.find("a", "x") != nullptr);
  CHECK(b.find("b", "x") == nullptr);  // another session's is not found, not refused
  CHECK(b.open_session("a"));
  CHECK(b.open_session("b"));
  CHECK(!b.open_session("c"));
  b.forget("x");
  CHECK(b.find("a", "x") == nullptr);
}

TEST_CASE("agent book: events per session, bounded, with gaps told", "[agent][unit]") {
  ag::book b({.max_transfers = 10, .max_sessions = 4, .max_events_per_session = 3});
  b.open_session("a");
  b.open_session("b");
  b.claim("a", "x", tt::kind::download, req());
  b.claim("b", "y", tt::kind::download, req());
  const auto s1 = b.publish("x", {{"type", "added"}});
  const auto s2 = b.publish("y", {{"type", "added"}});
  CHECK(s1 == 1);
  CHECK(s2 == 2);
  CHECK(b.publish("nobody", {{"type", "added"}}) == 0);

  auto a = b.events_after("a", 0, 100);
  CHECK(!a.gap);
  REQUIRE(a.events.size() == 1);  // b's event is not a's
  CHECK(a.events[0].seq == 1);
  CHECK(a.cursor == 1);
  CHECK(b.events_after("a", 1, 100).events.empty());

  // Four more for a, queue of three: the oldest goes, and a cursor from before it is told.
  for (int i = 0; i < 4; ++i) b.publish("x", {{"type", "progress"}});
  auto late = b.events_after("a", 1, 100);
  CHECK(late.gap);
  CHECK(late.cursor == b.last_seq());
  auto recent = b.events_after("a", 4, 100);
  CHECK(!recent.gap);
  CHECK(recent.events.size() == 2);
  CHECK(recent.cursor == 6);
  // At most `max` at a time, the cursor at the last one given.
  auto one = b.events_after("a", 4, 1);
  CHECK(one.events.size() == 1);
  CHECK(one.cursor == 5);
  // A cursor from the future (another agent's numbers) is a gap too.
  CHECK(b.events_after("a", 1000, 100).gap);
}

TEST_CASE("agent book: survives a restart with its owners and numbers that only grow", "[agent][unit]") {
  ag::book::limits l{.max_transfers = 10, .max_sessions = 4, .max_events_per_session = 8};
  ag::book b(l);
  auto r = req();
  r.headers = {{"Authorization", "Bearer secret"}};
  b.claim("a", "x", tt::kind::download, r);
  b.find("x")->finished = true;
  b.find("x")->result_seq = 3;
  b.claim("a", "p", tt::kind::upload, req("http://h/f/", "/tmp/p"));
  b.find("p")->paused = true;
  std::uint64_t last = 0;
  for (int i = 0; i < 10; ++i) last = b.publish("x", {{"type", "progress"}});
  const auto doc = b.encode();

  std::string why;
  auto again = ag::book::decode(doc, l, why);
  INFO(why);
  REQUIRE(again);
  CHECK(why.empty());
  REQUIRE(again->find("a", "x"));
  CHECK(again->find("x")->finished);
  CHECK(again->find("x")->result_seq == 3);
  CHECK(again->find("x")->req.headers == r.headers);
  CHECK(again->find("p")->paused);
  CHECK(again->find("p")->kind == tt::kind::upload);
  // Numbers go on above everything the last run may have handed out, and old cursors are gaps.
  again->open_session("a");
  CHECK(again->publish("x", {{"type", "progress"}}) > last);
  CHECK(again->events_after("a", last, 10).gap);

  struct bad {
    const char* doc;
    const char* why;
  };
  const bad rows[] = {
      {R"([])", "not a JSON object"},
      {R"({"schema":2,"reserved":1,"transfers":{}})", "schema 2"},
      {R"({"schema":1,"reserved":0,"transfers":{}})", "out of range"},
      {R"({"schema":1,"reserved":5})", "\"transfers\""},
      {R"({"schema":1,"reserved":5,"transfers":{"x":{"session":"a","kind":"download"}}})", "missing \"request\""},
      {R"({"schema":1,"reserved":5,"transfers":{"x":{"session":"a","kind":"sideways","request":{}}}})", "unknown value"},
      {R"({"schema":1,"reserved":5,"transfers":{"x":{"session":"a","kind":"download","request":{"id":"y","url":"http://h/","file":"/f"}}}})",
       "its id differs"},
  };
  for (const auto& row : rows) {
    INFO(row.doc);
    std::string w;
    CHECK(!ag::book::decode(json::parse(row.doc), l, w));
    CHECK_THAT(w, Catch::Contains(row.why));
  }
}
