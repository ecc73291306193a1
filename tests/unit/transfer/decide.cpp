// The transfer engine's decisions, by table: resume planning, response judgement, the retry
// state machine, tus answers, the lifecycle (attach, settle) and pacing. No socket, no disk.
#include <tether/transfer/detail/download_plan.hpp>
#include <tether/transfer/detail/lifecycle.hpp>
#include <tether/transfer/detail/pacing.hpp>
#include <tether/transfer/detail/retry_fsm.hpp>
#include <tether/transfer/detail/tus_plan.hpp>

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
namespace td = tether::transfer::detail;
using tether::error;
using tether::net::outcome;

namespace {
const std::string strong = "\"v1\"", strong2 = "\"v2\"", weak = "W/\"v1\"";
const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";

td::record downloading(std::string etag = strong, std::string last_modified = {}, std::string sha = {}) {
  td::record r;
  r.id = "x";
  r.url = "http://h/f";
  r.file = "/tmp/f";
  r.etag = std::move(etag);
  r.last_modified = std::move(last_modified);
  r.sha256_expected = std::move(sha);
  r.length = 1000;
  r.checkpoint_bytes = 64u << 10;
  return r;
}
tether::net::endpoint_url url_of(const char* text) { return *tether::net::parse_url(text); }
}  // namespace

TEST_CASE("decide: resume planning", "[transfer][decide]") {
  struct row {
    const char* name;
    td::record rec;
    std::uint64_t held;
    bool restart;
    std::optional<std::uint64_t> from;
    std::string if_range;
  };
  const std::string sha(64, 'a');
  const row rows[] = {
      {"nothing held: a plain GET", downloading(), 0, false, std::nullopt, ""},
      {"strong ETag: Range and If-Range with it", downloading(strong, date), 500, false, 500, strong},
      {"Last-Modified only: If-Range with the date", downloading("", date), 500, false, 500, date},
      {"only the caller's SHA-256: Range without If-Range", downloading("", "", sha), 500, false, 500, ""},
      {"no proof at all: start over", downloading("", ""), 500, true, std::nullopt, ""},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    const auto p = td::plan_resume(r.rec, r.held);
    CHECK(p.restart == r.restart);
    CHECK(p.range_from == r.from);
    CHECK(p.if_range == r.if_range);
  }
}

TEST_CASE("decide: download response judgement", "[transfer][decide]") {
  using step = td::response_step;
  struct row {
    const char* name;
    td::record rec;
    std::uint64_t held;
    td::response_facts f;
    step expect;
    std::optional<error> ec;  // for fail and start_over
    bool whole = false, restart = false;
    std::string why_has = {};
  };
  auto facts = [](unsigned status, std::string content_range = {}, std::string etag = strong) {
    td::response_facts f;
    f.status = status;
    f.content_range = std::move(content_range);
    f.etag = std::move(etag);
    if (status == 200) f.content_length = 1000;
    return f;
  };
  auto with = [](td::response_facts f, auto change) {
    change(f);
    return f;
  };
  const row rows[] = {
      {"200 fresh: the whole body", downloading(""), 0, facts(200), step::body, {}, true, false},
      {"200 to a ranged request: start over from zero", downloading(), 500, facts(200), step::body, {}, true, true},
      {"206 as asked", downloading(), 500, facts(206, "bytes 500-999/1000"), step::body, {}},
      {"206 with a weak ETag is not another version", downloading(), 500, facts(206, "bytes 500-999/1000", weak), step::body, {}},
      {"206 with identity encoding equals none", downloading(), 500,
       with(facts(206, "bytes 500-999/1000"), [](auto& f) { f.content_encoding = "identity"; }), step::body, {}},
      {"206 starting elsewhere", downloading(), 500, facts(206, "bytes 400-999/1000"), step::start_over,
       error::range_mismatch, false, false, "starting at byte 400"},
      {"206 for another length", downloading(), 500, facts(206, "bytes 500-1999/2000"), step::start_over,
       error::range_mismatch, false, false, "different length"},
      {"206 ending short of the length", downloading(), 500, facts(206, "bytes 500-899/1000"), step::start_over,
       error::range_mismatch, false, false, "different length"},
      {"206 with an unknown complete length", downloading(), 500, facts(206, "bytes 500-999/*"), step::start_over,
       error::range_mismatch},
      {"206 without Content-Range", downloading(), 500, facts(206), step::start_over, error::range_mismatch, false,
       false, "unusable Content-Range"},
      {"206 unsatisfied form", downloading(), 500, facts(206, "bytes */1000"), step::start_over, error::range_mismatch},
      {"206 to a request without Range", downloading(), 0, facts(206, "bytes 0-999/1000"), step::start_over,
       error::range_mismatch},
      {"206 with another strong ETag", downloading(), 500, facts(206, "bytes 500-999/1000", strong2), step::start_over,
       error::range_mismatch, false, false, "another ETag"},
      {"416: what is held does not fit the content", downloading(), 500, facts(416), step::start_over,
       error::range_mismatch, false, false, "416"},
      {"200 gzip: never saved as the file", downloading(), 0,
       with(facts(200), [](auto& f) { f.content_encoding = "gzip"; }), step::fail, error::encoded_content, false, false,
       "Content-Encoding: gzip"},
      {"206 br: never saved as the file", downloading(), 500,
       with(facts(206, "bytes 500-999/1000"), [](auto& f) { f.content_encoding = "br"; }), step::fail,
       error::encoded_content},
      {"404 is a refusal", downloading(), 0, facts(404), step::fail, error::rejected, false, false, "404"},
      {"410 is a refusal", downloading(), 500, facts(410), step::fail, error::rejected},
      {"500 is a server failure, worth retrying", downloading(), 0, facts(500), step::fail, error::server_error},
      {"502 is a server failure, worth retrying", downloading(), 0, facts(502), step::fail, error::server_error},
      {"503 asks for time", downloading(), 0, facts(503), step::fail, error::retry_later},
      {"429 asks for time", downloading(), 0, facts(429), step::fail, error::retry_later},
      {"304 was never asked for", downloading(), 500, facts(304), step::fail, error::protocol_error},
      {"302 without Location", downloading(), 0, facts(302), step::fail, error::protocol_error, false, false,
       "without a usable Location"},
      {"301 to a ws: URL", downloading(), 0, with(facts(301), [](auto& f) { f.location = "ws://h/x"; }), step::fail,
       error::protocol_error},
      {"too large for the limit", downloading(""), 0, with(facts(200), [](auto& f) { f.content_length = 1u << 30; }),
       step::fail, error::too_large, false, false, "above the limit"},
  };
  const td::response_limits limits{64u << 10, 100u << 20};
  for (const auto& r : rows) {
    INFO(r.name);
    const auto v = td::judge_response(r.rec, r.held, r.f, url_of("http://h/f"), limits, std::chrono::system_clock::now());
    CHECK(v.step == r.expect);
    if (r.ec) CHECK(v.ec == *r.ec);
    if (r.expect == step::body) {
      CHECK(v.whole == r.whole);
      CHECK(v.restart == r.restart);
    }
    if (!r.why_has.empty()) CHECK(v.why.find(r.why_has) != std::string::npos);
  }
}

TEST_CASE("decide: what a 200 records, redirects and Retry-After", "[transfer][decide]") {
  const auto now = std::chrono::system_clock::now();
  td::response_facts f;
  f.status = 200;
  f.etag = weak;
  f.last_modified = date;
  f.content_length = 5ull << 30;
  auto v = td::judge_response(downloading(""), 0, f, url_of("http://h/f"), {4u << 20, 0}, now);
  CHECK(v.etag.empty());  // a weak ETag cannot validate a range
  CHECK(v.last_modified == date);
  CHECK(v.length == 5ull << 30);
  CHECK(v.checkpoint_bytes == td::chunk_size_for(5ull << 30, 4u << 20));
  CHECK(v.checkpoint_bytes % (64u << 10) == 0);
  CHECK((5ull << 30) / v.checkpoint_bytes <= 1024);
  CHECK(td::chunk_size_for(std::nullopt, 4u << 20) == 4u << 20);
  CHECK(td::chunk_size_for(100u << 20, 4u << 20) == 4u << 20);

  for (unsigned status : {301u, 302u, 303u, 307u, 308u}) {
    td::response_facts r;
    r.status = status;
    r.location = "../other?q=1";
    v = td::judge_response(downloading(), 0, r, url_of("https://h:8443/a/b"), {}, now);
    REQUIRE(v.step == td::response_step::redirect);
    CHECK(v.redirect->host == "h");
    CHECK(v.redirect->port == 8443);
    CHECK(v.redirect->target == "/other?q=1");
  }

  td::response_facts busy;
  busy.status = 503;
  busy.retry_after = "120";
  v = td::judge_response(downloading(), 0, busy, url_of("http://h/f"), {}, now);
  CHECK(v.retry_after == 120s);
  busy.retry_after = "Thu, 01 Jan 2099 00:00:00 GMT";
  v = td::judge_response(downloading(), 0, busy, url_of("http://h/f"), {}, now);
  REQUIRE(v.retry_after);
  CHECK(*v.retry_after > std::chrono::hours{24 * 300});
  busy.retry_after = "soon";
  v = td::judge_response(downloading(), 0, busy, url_of("http://h/f"), {}, now);
  CHECK(!v.retry_after);
}

namespace {
tether::net::backoff_policy fast_policy(std::uint32_t attempts = 3) {
  tether::net::backoff_policy p;
  p.initial = 100ms;
  p.max = 1000ms;
  p.min = 10ms;
  p.max_attempts = attempts;
  return p;
}
td::attempt_end ended(tether::error_code ec, unsigned status = 0, bool progressed = false) {
  td::attempt_end e;
  e.ec = ec;
  e.status = status;
  e.progressed = progressed;
  e.message = "m";
  return e;
}
}  // namespace

TEST_CASE("decide: the retry state machine", "[transfer][decide]") {
  using clk = std::chrono::steady_clock;
  const auto t0 = clk::now();
  const auto sys_now = std::chrono::system_clock::now();
  const auto far = t0 + 1h;
  const auto reset = make_error_code(boost::asio::error::connection_reset);

  SECTION("a completed attempt finishes") {
    td::retry_fsm fsm(fast_policy(), 300s, far, 1);
    td::attempt_end e;
    e.complete = true;
    CHECK(fsm.next(e, t0, sys_now, 1).kind == td::retry_step::finish);
  }
  SECTION("failures a retry cannot fix stop at once with their class") {
    struct row {
      tether::error_code ec;
      outcome o;
    };
    const row rows[] = {{make_error_code(error::rejected), outcome::rejected},
                        {make_error_code(error::encoded_content), outcome::failed},
                        {make_error_code(error::integrity_mismatch), outcome::failed},
                        {make_error_code(error::too_large), outcome::failed}};
    for (const auto& r : rows) {
      INFO(r.ec.message());
      td::retry_fsm fsm(fast_policy(), 300s, far, 1);
      const auto s = fsm.next(ended(r.ec), t0, sys_now, 1);
      CHECK(s.kind == td::retry_step::stop);
      CHECK(s.outcome == r.o);
      CHECK(s.error == r.ec);
    }
  }
  SECTION("transient failures wait under the backoff; progress starts the count over") {
    td::retry_fsm fsm(fast_policy(3), 300s, far, 7);
    REQUIRE(!fsm.before_attempt(t0));
    for (int i = 0; i < 2; ++i) {
      const auto s = fsm.next(ended(reset), t0, sys_now, 1);
      REQUIRE(s.kind == td::retry_step::wait);
      CHECK(s.delay >= 10ms);
      CHECK(s.delay <= 1000ms);
    }
    // max_attempts counts attempts, the first included: the third failure in a row gives up.
    auto s = fsm.next(ended(reset), t0, sys_now, 3);
    CHECK(s.kind == td::retry_step::stop);
    CHECK(s.outcome == outcome::failed);
    CHECK(s.error == error::retries_exhausted);
    CHECK(s.message.find("gave up after 3 attempts") != std::string::npos);

    td::retry_fsm once(fast_policy(1), 300s, far, 7);  // one attempt: no retry at all
    CHECK(once.next(ended(reset), t0, sys_now, 1).kind == td::retry_step::stop);

    td::retry_fsm again(fast_policy(3), 300s, far, 7);
    for (int i = 0; i < 10; ++i) {  // each attempt brought bytes: never gives up
      s = again.next(ended(reset, 0, true), t0, sys_now, 1);
      CHECK(s.kind == td::retry_step::wait);
      CHECK(s.delay <= 100ms);  // the first ceiling, every time
    }
  }
  SECTION("a range mismatch retries (the data was already reset)") {
    td::retry_fsm fsm(fast_policy(), 300s, far, 1);
    CHECK(fsm.next(ended(make_error_code(error::range_mismatch)), t0, sys_now, 1).kind == td::retry_step::wait);
  }
  SECTION("a server that asks for time and never recovers ends as retry_later, its own error kept") {
    struct row {
      const char* what;
      unsigned status;
      std::optional<std::chrono::seconds> retry_after;
      tether::error_code ec;
      outcome o;
    };
    const row rows[] = {
        {"429", 429, std::nullopt, make_error_code(error::retry_later), outcome::retry_later},
        {"503 with Retry-After", 503, 1s, make_error_code(error::retry_later), outcome::retry_later},
        {"503 without Retry-After: failed", 503, std::nullopt, make_error_code(error::retry_later), outcome::failed},
        {"500: failed with the server's error", 500, std::nullopt, make_error_code(error::server_error), outcome::failed},
        {"502: failed", 502, std::nullopt, make_error_code(error::server_error), outcome::failed},
    };
    for (const auto& r : rows) {
      INFO(r.what);
      td::retry_fsm fsm(fast_policy(2), 300s, far, 1);
      auto e = ended(r.ec, r.status);
      e.retry_after = r.retry_after;
      CHECK(fsm.next(e, t0, sys_now, 1).kind == td::retry_step::wait);
      const auto s = fsm.next(e, t0, sys_now, 2);
      CHECK(s.kind == td::retry_step::stop);
      CHECK(s.outcome == r.o);
      CHECK(s.error == r.ec);
      CHECK(s.message.find("gave up after 2 attempts") != std::string::npos);
    }
  }
  SECTION("Retry-After: honoured as the least delay, or beyond the limit a start time") {
    td::retry_fsm fsm(fast_policy(), 300s, far, 1);
    auto e = ended(make_error_code(error::retry_later), 503);
    e.retry_after = 7s;
    auto s = fsm.next(e, t0, sys_now, 1);
    CHECK(s.kind == td::retry_step::wait);
    CHECK(s.delay == 7s);
    e.retry_after = 3600s;
    s = fsm.next(e, t0, sys_now, 2);
    CHECK(s.kind == td::retry_step::stop);
    CHECK(s.outcome == outcome::retry_later);
    REQUIRE(s.not_before);
    CHECK(*s.not_before == sys_now + 3600s);
  }
  SECTION("the deadline: no attempt starts, no wait runs past it") {
    td::retry_fsm fsm(fast_policy(), 300s, t0 + 5s, 1);
    CHECK(!fsm.before_attempt(t0));
    auto e = ended(make_error_code(error::retry_later), 503);
    e.retry_after = 10s;
    auto s = fsm.next(e, t0, sys_now, 1);
    CHECK(s.kind == td::retry_step::stop);
    CHECK(s.error == error::deadline_exceeded);
    auto late = fsm.before_attempt(t0 + 6s);
    REQUIRE(late);
    CHECK(late->error == error::deadline_exceeded);
  }
}

TEST_CASE("decide: tus answers", "[transfer][decide]") {
  CHECK(td::header_tokens(" Creation ,termination,, Checksum\t") ==
        std::set<std::string>{"creation", "termination", "checksum"});
  struct caps_row {
    unsigned status;
    const char *ext, *algs;
    bool termination;
    std::optional<td::hash_algorithm> checksum;
  };
  const caps_row caps[] = {
      {204, "creation,termination,checksum", "md5, sha1, sha256", true, td::hash_algorithm::sha256},
      {200, "creation,checksum", "sha1", false, td::hash_algorithm::sha1},
      {204, "creation,checksum", "md5", false, std::nullopt},
      {204, "creation", "sha256", false, std::nullopt},  // algorithms without the extension
      {404, "termination,checksum", "sha256", false, std::nullopt},
  };
  for (const auto& c : caps) {
    const auto got = td::judge_options(c.status, c.ext, c.algs);
    CHECK(got.termination == c.termination);
    CHECK(got.checksum == c.checksum);
  }

  using K = td::tus_verdict;
  const auto create = url_of("https://h/files/");
  auto v = td::judge_creation(201, "/files/abc", create);
  REQUIRE(v.kind == K::proceed);
  CHECK(v.location->host == "h");
  CHECK(v.location->target == "/files/abc");
  CHECK(td::judge_creation(201, "ws://h/files/abc", create).ec == error::protocol_error);
  CHECK(td::judge_creation(201, "", create).ec == error::protocol_error);
  CHECK(td::judge_creation(200, "/files/abc", create).ec == error::protocol_error);
  CHECK(td::judge_creation(413, "", create).ec == error::rejected);
  CHECK(td::judge_creation(503, "", create).ec == error::retry_later);

  struct head_row {
    unsigned status;
    std::optional<std::string_view> offset, length;
    K::kind_t kind;
    std::uint64_t at = 0;
    std::optional<error> ec = {};
  };
  const head_row heads[] = {
      {200, "500", "1000", K::proceed, 500},
      {204, "0", std::nullopt, K::proceed, 0},  // deferred length: taken as ours
      {200, "1000", "1000", K::proceed, 1000},
      {404, std::nullopt, std::nullopt, K::forget},
      {410, std::nullopt, std::nullopt, K::forget},
      {200, std::nullopt, "1000", K::fail, 0, error::protocol_error},
      {200, "1001", "1000", K::fail, 0, error::protocol_error},
      {200, "5", "999", K::fail, 0, error::protocol_error},
      {200, "-5", "1000", K::fail, 0, error::protocol_error},
      {403, std::nullopt, std::nullopt, K::fail, 0, error::rejected},
      {500, std::nullopt, std::nullopt, K::fail, 0, error::server_error},
  };
  for (const auto& h : heads) {
    INFO(h.status << " " << h.offset.value_or("-"));
    v = td::judge_head(h.status, h.offset, h.length, 1000);
    CHECK(v.kind == h.kind);
    if (h.kind == K::proceed) CHECK(v.offset == h.at);
    if (h.ec) CHECK(v.ec == *h.ec);
  }

  struct patch_row {
    unsigned status;
    std::optional<std::string_view> offset;
    K::kind_t kind;
    std::optional<error> ec = {};
  };
  const patch_row patches[] = {
      {204, "200", K::proceed},
      {204, "150", K::proceed},                        // the server kept part of it
      {204, "100", K::fail, error::protocol_error},     // no progress
      {204, "201", K::fail, error::protocol_error},     // more than was sent
      {204, std::nullopt, K::fail, error::protocol_error},
      {404, std::nullopt, K::forget, error::retry_later},
      {410, std::nullopt, K::forget, error::retry_later},
      {409, std::nullopt, K::retry, error::retry_later},
      {423, std::nullopt, K::retry, error::retry_later},
      {460, std::nullopt, K::retry, error::retry_later},
      {400, std::nullopt, K::fail, error::rejected},
      {502, std::nullopt, K::fail, error::server_error},
  };
  for (const auto& p : patches) {
    INFO(p.status << " " << p.offset.value_or("-"));
    v = td::judge_patch(p.status, p.offset, 100, 200);
    CHECK(v.kind == p.kind);
    if (p.ec) CHECK(v.ec == *p.ec);
  }

  CHECK(!td::upload_expired(0, 1'000));
  CHECK(!td::upload_expired(2'000, 1'000));
  CHECK(td::upload_expired(1'000, 1'000));
}

TEST_CASE("decide: what a call with an id does", "[transfer][decide]") {
  using A = td::attach_action;
  auto fresh = downloading();
  auto with_status = [&](tether::transfer::status s, outcome o = outcome::failed) {
    auto r = fresh;
    r.status = s;
    if (s == tether::transfer::status::succeeded || s == tether::transfer::status::failed ||
        s == tether::transfer::status::cancelled) {
      tether::transfer::result res;
      res.outcome = o;
      r.result = res;
    }
    r.produced = td::file_identity{1000, 42, 7};
    return r;
  };
  const auto done = with_status(tether::transfer::status::succeeded, outcome::success);
  const auto failed = with_status(tether::transfer::status::failed);
  const auto cancelled = with_status(tether::transfer::status::cancelled);
  const auto waiting = with_status(tether::transfer::status::waiting);
  const auto paused = with_status(tether::transfer::status::paused);
  auto other_url = done;
  other_url.url = "http://h/other";
  auto other_kind = waiting;
  other_kind.kind = tether::transfer::kind::upload;
  auto upload_done = done;
  upload_done.kind = fresh.kind = tether::transfer::kind::download;
  auto up_fresh = fresh;
  up_fresh.kind = tether::transfer::kind::upload;
  upload_done.kind = tether::transfer::kind::upload;

  struct row {
    const char* name;
    const td::record* existing;
    const td::record* asked;
    bool active;
    std::optional<td::file_identity> dest;
    A action;
    bool keep = false;
  };
  const td::file_identity same{1000, 42, 7}, touched{1000, 43, 7}, replaced{1000, 42, 8};
  const row rows[] = {
      {"unknown id: create", nullptr, &fresh, false, {}, A::create},
      {"running: join", &waiting, &fresh, true, {}, A::join},
      {"unfinished: resume", &waiting, &fresh, false, {}, A::resume},
      {"paused: resume", &paused, &fresh, false, {}, A::resume},
      {"succeeded, file intact: replay", &done, &fresh, false, same, A::replay},
      {"succeeded, file gone: fetch again", &done, &fresh, false, std::nullopt, A::rerun, false},
      {"succeeded, file modified: fetch again", &done, &fresh, false, touched, A::rerun, false},
      {"succeeded, file replaced: fetch again", &done, &fresh, false, replaced, A::rerun, false},
      {"upload succeeded: replay", &upload_done, &up_fresh, false, std::nullopt, A::replay},
      {"failed: run again, keeping what is durable", &failed, &fresh, false, {}, A::rerun, true},
      {"cancelled: run again from zero", &cancelled, &fresh, false, {}, A::rerun, false},
      {"another URL under the id: refuse", &other_url, &fresh, false, same, A::refuse},
      {"another kind under the id: refuse", &other_kind, &fresh, false, {}, A::refuse},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    td::attach_facts f;
    f.existing = r.existing;
    f.active = r.active;
    f.destination = r.dest;
    const auto d = td::decide_attach(*r.asked, f);
    CHECK(d.action == r.action);
    if (r.action == A::rerun) CHECK(d.keep_progress == r.keep);
    if (r.action == A::refuse) CHECK(!d.why.empty());
  }
}

TEST_CASE("decide: how a run's end settles", "[transfer][decide]") {
  using S = tether::transfer::status;
  using K = td::stop_kind;
  auto res = [](outcome o, tether::error_code ec = {}, std::uint64_t durable = 100) {
    tether::transfer::result r;
    r.outcome = o;
    r.error = ec;
    r.bytes_on_disk = durable;
    return r;
  };
  struct row {
    const char* name;
    K stop;
    tether::transfer::result r;
    S status;
    bool final, discard;
    std::optional<error> forced = {};
  };
  const row rows[] = {
      {"success", K::none, res(outcome::success), S::succeeded, true, false},
      {"rejected: final, data kept for a rerun", K::none, res(outcome::rejected, make_error_code(error::rejected)),
       S::failed, true, false},
      {"retries spent: final, data kept", K::none, res(outcome::failed, make_error_code(error::retries_exhausted)),
       S::failed, true, false},
      {"integrity mismatch: the data is proven wrong", K::none,
       res(outcome::failed, make_error_code(error::integrity_mismatch)), S::failed, true, true},
      {"failed with nothing durable", K::none, res(outcome::failed, make_error_code(error::insufficient_space), 0),
       S::failed, true, true},
      {"retry later: resumable", K::none, res(outcome::retry_later, make_error_code(error::retry_later)), S::waiting,
       false, false},
      {"cancel: final, space given back", K::cancel, res(outcome::retry_later), S::cancelled, true, true,
       error::cancelled},
      {"pause: resumable", K::pause, res(outcome::failed), S::paused, false, false, error::paused},
      {"shutdown: resumable", K::shutdown, res(outcome::failed), S::waiting, false, false},
      {"remove", K::remove, res(outcome::failed), S::waiting, false, false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    const auto s = td::settle(r.stop, r.r);
    CHECK(s.status == r.status);
    CHECK(s.final == r.final);
    CHECK(s.discard_partial == r.discard);
    if (r.forced) CHECK(s.error == *r.forced);
    CHECK(s.outcome.has_value() == (r.stop != K::none));
  }
}

TEST_CASE("decide: pacing and the rate estimate", "[transfer][decide]") {
  using clk = std::chrono::steady_clock;
  const auto t0 = clk::time_point{} + 1h;
  td::rate_limiter lim;
  CHECK(lim.reserve(0, 1'000'000, t0) == t0);  // no limit
  // 1 MB/s: the first 100 ms are a burst; then each 100 KB moves the next send by 100 ms.
  auto next = lim.reserve(1'000'000, 100'000, t0);
  CHECK(next == t0);
  next = lim.reserve(1'000'000, 100'000, t0);
  CHECK(next == t0 + 100ms);
  next = lim.reserve(1'000'000, 500'000, t0);
  CHECK(next == t0 + 600ms);
  CHECK(td::tighter_limit(0, 0) == 0);
  CHECK(td::tighter_limit(5, 0) == 5);
  CHECK(td::tighter_limit(0, 7) == 7);
  CHECK(td::tighter_limit(9, 7) == 7);

  td::rate_estimate est;
  est.update(0, t0);
  CHECK(est.rate() == 0);
  CHECK(!est.eta(0, 1000));
  est.update(500'000, t0 + 250ms);  // within the period: no sample yet
  CHECK(est.rate() == 0);
  est.update(1'000'000, t0 + 1s);
  CHECK(est.rate() == Approx(1'000'000));
  CHECK(est.eta(1'000'000, 3'000'000) == std::chrono::seconds{2});
  est.update(1'000'000, t0 + 2s);  // a stall pulls the estimate down, not to zero
  CHECK(est.rate() == Approx(700'000));
  CHECK(!est.eta(5, std::nullopt));
}
