// Segmented downloads: the decisions by table (when, how cut, what a segment's answer means,
// the record), then against the loopback fixture: several connections with If-Range, a version
// change in flight, one connection failing again and again, a server that ignores a segment's
// Range, and servers whose bytes cannot be proven.
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/segment_plan.hpp>

#include <nlohmann/json.hpp>

#include <set>

using namespace tether::test;
namespace td = tether::transfer::detail;
using tether::error;

namespace {

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB;

td::record content(std::uint64_t length, std::string etag = "\"v1\"") {
  td::record r;
  r.id = "x";
  r.url = "http://h/f";
  r.file = "/tmp/f";
  r.etag = std::move(etag);
  r.length = length;
  r.checkpoint_bytes = 64 * KiB;
  return r;
}

td::response_verdict whole(std::uint64_t length, std::string etag, bool ranges = true, bool strong_date = false) {
  td::response_verdict v;
  v.step = td::response_step::body;
  v.whole = true;
  v.etag = std::move(etag);
  v.length = length;
  v.accepts_ranges = ranges;
  v.last_modified_strong = strong_date;
  if (strong_date) v.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT";
  return v;
}

td::response_facts partial(std::uint64_t first, std::uint64_t last, std::uint64_t total, std::string etag = "\"v1\"") {
  td::response_facts f;
  f.status = 206;
  f.etag = std::move(etag);
  f.content_range = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(total);
  f.content_length = last - first + 1;
  return f;
}

std::vector<http_request_record> ranged_gets(const http_server& s, const std::string& path) {
  std::vector<http_request_record> out;
  for (auto& r : s.requests())
    if (r.method == "GET" && r.target == path && r.headers.count("range")) out.push_back(r);
  return out;
}

std::size_t gets(const http_server& s, const std::string& path) {
  std::size_t n = 0;
  for (auto& r : s.requests()) n += r.method == "GET" && r.target == path;
  return n;
}

}  // namespace

TEST_CASE("segments: when a download may use several connections", "[transfer][segments]") {
  const td::segment_limits four{4, 1 * MiB};
  struct row {
    const char* name;
    td::record rec;
    td::response_verdict v;
    td::segment_limits limits;
    bool expected;
  };
  auto with_sha = content(8 * MiB, "");
  with_sha.sha256_expected = std::string(64, 'a');
  auto refused = content(8 * MiB);
  refused.ranges_refused = true;
  const std::vector<row> rows = {
      {"a strong ETag and Accept-Ranges", content(8 * MiB), whole(8 * MiB, "\"v1\""), four, true},
      {"no Accept-Ranges", content(8 * MiB), whole(8 * MiB, "\"v1\"", false), four, false},
      {"one connection allowed", content(8 * MiB), whole(8 * MiB, "\"v1\""), {1, 1 * MiB}, false},
      {"shorter than two segments", content(2 * MiB - 1), whole(2 * MiB - 1, "\"v1\""), four, false},
      {"exactly two segments", content(2 * MiB), whole(2 * MiB, "\"v1\""), four, true},
      {"no validator at all", content(8 * MiB, ""), whole(8 * MiB, ""), four, false},
      {"a Last-Modified 60 s before Date", content(8 * MiB, ""), whole(8 * MiB, "", true, true), four, true},
      {"a Last-Modified too close to Date", content(8 * MiB, ""), whole(8 * MiB, "", true, false), four, false},
      {"only the caller's SHA-256", with_sha, whole(8 * MiB, ""), four, true},
      {"ranges refused before", refused, whole(8 * MiB, "\"v1\""), four, false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(td::may_segment(r.rec, r.v, r.limits) == r.expected);
  }
  auto unknown = whole(0, "\"v1\"");
  unknown.length.reset();
  CHECK_FALSE(td::may_segment(content(8 * MiB), unknown, four));
}

TEST_CASE("segments: missing spans, split points and the first cut", "[transfer][segments]") {
  const std::uint64_t c = 64 * KiB;
  const std::string d(64, 'a');
  using spans = std::vector<td::span>;
  // The chunks held are skipped; runs of missing chunks merge; the last chunk may be short.
  CHECK(td::missing_spans({"", "", d, "", ""}, c, 4 * c + 10) == spans{{0, 2 * c}, {3 * c, 4 * c + 10}});
  CHECK(td::missing_spans({d, d}, c, 2 * c).empty());
  CHECK(td::held_bytes({d, "", d}, c, 2 * c + 5) == c + 5);

  struct split_row {
    td::span s;
    std::uint64_t min_segment;
    std::optional<std::uint64_t> at;
  };
  const std::vector<split_row> splits = {
      {{0, 8 * c}, c, 4 * c},          // the middle
      {{0, 7 * c}, c, 4 * c},          // rounded up to a chunk
      {{c / 2, 8 * c}, c, 5 * c},      // a rest that starts inside a chunk
      {{0, 2 * c - 1}, c, std::nullopt},  // too small for two
      {{0, 8 * c}, 5 * c, std::nullopt},  // both halves must reach the minimum
      {{0, 3 * c + 1}, c, 2 * c},      // the tail keeps at least a chunk
  };
  for (const auto& r : splits) {
    INFO(r.s.begin << "-" << r.s.end << " min " << r.min_segment);
    CHECK(td::split_point(r.s, c, r.min_segment) == r.at);
  }
  // Fresh: four equal segments on chunk boundaries.
  CHECK(td::initial_segments({{0, 16 * c}}, c, {4, c}) == spans{{0, 4 * c}, {4 * c, 8 * c}, {8 * c, 12 * c}, {12 * c, 16 * c}});
  // Not below the minimum segment: fewer than the connections.
  CHECK(td::initial_segments({{0, 16 * c}}, c, {4, 8 * c}) == spans{{0, 8 * c}, {8 * c, 16 * c}});
  // After a restart: the holes, the largest split first.
  CHECK(td::initial_segments({{0, 2 * c}, {4 * c, 12 * c}}, c, {3, c}) == spans{{0, 2 * c}, {4 * c, 8 * c}, {8 * c, 12 * c}});
  // One connection: the holes as they are.
  CHECK(td::initial_segments({{0, 2 * c}, {4 * c, 12 * c}}, c, {1, c}) == spans{{0, 2 * c}, {4 * c, 12 * c}});
}

TEST_CASE("segments: the other connections open when the first one waits for its data", "[transfer][segments]") {
  using namespace std::chrono_literals;
  struct row {
    std::string what;
    td::ramp_sample sample;
    td::ramp_step expect;
  };
  const auto ms = [](int n) { return std::chrono::nanoseconds(std::chrono::milliseconds(n)); };
  const std::vector<row> rows = {
      {"the window is not over", {ms(40), ms(39), 1 * MiB}, td::ramp_step::sample},
      {"just short of both ends of the window", {ms(49), ms(49), 32 * MiB - 1}, td::ramp_step::sample},
      {"a capped connection: waiting nearly all the time", {ms(51), ms(50), 800 * KiB}, td::ramp_step::open_all},
      {"exactly 80% waiting", {ms(50), ms(40), 3 * MiB}, td::ramp_step::open_all},
      {"just under 80% waiting", {ms(50), ms(39), 3 * MiB}, td::ramp_step::again},
      {"a server sharing this machine: half the time waiting", {ms(50), ms(25), 30 * MiB}, td::ramp_step::again},
      {"32 MiB early: judged then, machine-bound", {ms(38), ms(19), 32 * MiB}, td::ramp_step::again},
      {"32 MiB early: judged then, network-bound", {ms(38), ms(36), 32 * MiB}, td::ramp_step::open_all},
      {"a first connection that got nothing", {ms(400), ms(400), 0}, td::ramp_step::open_all},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    CHECK(td::judge_ramp(r.sample) == r.expect);
  }
}

TEST_CASE("segments: what a segment's answer means for the whole file", "[transfer][segments]") {
  const auto now = std::chrono::system_clock::now();
  const auto r = content(1000);
  const td::span asked{100, 400};
  using step = td::segment_step;
  auto facts = [](unsigned status) {
    td::response_facts f;
    f.status = status;
    return f;
  };
  auto whole_200 = facts(200);
  whole_200.etag = "\"v1\"";
  whole_200.content_length = 1000;
  auto other_200 = whole_200;
  other_200.etag = "\"v2\"";
  auto longer_200 = whole_200;
  longer_200.content_length = 1001;
  auto busy = facts(503);
  busy.retry_after = "7";
  auto gz = partial(100, 399, 1000);
  gz.content_encoding = "gzip";
  auto mismatched_length = partial(100, 399, 1000);
  mismatched_length.content_length = 10;
  struct row {
    const char* name;
    td::response_facts f;
    step expected;
  };
  const std::vector<row> rows = {
      {"206 for the bytes asked", partial(100, 399, 1000), step::body},
      {"206 for fewer bytes than asked", partial(100, 199, 1000), step::body},
      {"206 with the resource's ETag absent", partial(100, 399, 1000, ""), step::body},
      {"206 starting elsewhere", partial(101, 399, 1000), step::fail},
      {"206 past the segment", partial(100, 500, 1000), step::fail},
      {"206 whose Content-Length disagrees", mismatched_length, step::fail},
      {"206 unparsable", facts(206), step::fail},
      {"206 for another length", partial(100, 399, 1001), step::other_version},
      {"206 with another ETag", partial(100, 399, 1000, "\"v2\""), step::other_version},
      {"200, the same version: Range ignored", whole_200, step::one_connection},
      {"200 with another ETag: If-Range failed", other_200, step::other_version},
      {"200 of another length", longer_200, step::other_version},
      {"416: the content shrank", facts(416), step::other_version},
      {"302 to a segment", facts(302), step::one_connection},
      {"503 with Retry-After", busy, step::fail},
      {"404", facts(404), step::fail},
      {"an encoded segment", gz, step::fatal},
  };
  for (const auto& row : rows) {
    INFO(row.name);
    const auto v = td::judge_segment(r, asked, row.f, now);
    CHECK(v.step == row.expected);
    if (v.step != step::body) CHECK(!v.why.empty());
  }
  CHECK(td::judge_segment(r, asked, partial(100, 199, 1000), now).last == 199);
  const auto b = td::judge_segment(r, asked, busy, now);
  CHECK(b.ec == tether::net::status_error(503));
  REQUIRE(b.retry_after);
  CHECK(*b.retry_after == std::chrono::seconds{7});
  CHECK(td::judge_segment(r, asked, gz, now).ec == error::encoded_content);
}

TEST_CASE("segments: the record keeps one digest per durable chunk, and refuses what does not add up",
          "[transfer][segments]") {
  auto r = content(3 * 64 * KiB + 10);
  const std::string d(32, 'b');  // XXH3-128
  r.chunks = {d, "", "", d};
  r.offset = 64 * KiB + 10;
  std::string why;
  auto back = td::decode_record(td::encode_record(r), why);
  INFO(why);
  REQUIRE(back.has_value());
  CHECK(back->chunks == r.chunks);
  CHECK(back->offset == r.offset);
  CHECK_FALSE(back->ranges_refused);
  r.ranges_refused = true;
  back = td::decode_record(td::encode_record(r), why);
  REQUIRE(back.has_value());
  CHECK(back->ranges_refused);

  struct row {
    const char* name;
    std::function<void(nlohmann::json&)> damage;
    const char* says;
  };
  const std::vector<row> rows = {
      {"one chunk too few", [](nlohmann::json& j) { j["chunks"].erase(0); }, "\"chunks\" has 3 entries"},
      {"an offset that is not the chunks held", [](nlohmann::json& j) { j["offset"] = 5; }, "\"offset\" is not the size"},
      {"a chunk that is not a digest", [](nlohmann::json& j) { j["chunks"][1] = "zz"; }, "\"chunks\" holds"},
      {"chunks and digests both", [](nlohmann::json& j) { j["digests"] = {std::string(32, 'c')}; }, "both"},
      {"chunks without a length", [](nlohmann::json& j) { j["length"] = nullptr; }, "known \"length\""},
  };
  const auto good = nlohmann::json::parse(td::encode_record(r));
  for (const auto& row : rows) {
    INFO(row.name);
    auto j = good;
    row.damage(j);
    std::string w;
    const auto bad = td::decode_record(j.dump(), w);
    REQUIRE_FALSE(bad.has_value());
    const bool corrupt = bad.error() == error::state_corrupt;
    CHECK(corrupt);
    CHECK_THAT(w, Catch::Contains(row.says));
  }
}

namespace {
tt::options segmented_options(const transfer_env& env) {
  auto o = env.options();
  o.connections_per_download = 4;
  o.min_segment_bytes = 256 * KiB;
  o.ramp_connections = false;  // these tests are about several connections at once
  return o;
}
}  // namespace

TEST_CASE("segments: a file over four connections, each segment with If-Range, the bytes exact",
          "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 4 * MiB + 12345;
  s.add_content("/f", size);
  transfer_env env;
  std::vector<tt::progress> seen;
  auto o = segmented_options(env);
  o.report_sha256 = true;
  tt::manager m(env.pool.get_executor(), o);
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "seg");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(r.sha256 == td::sha256_hex(s.content("/f")));
  CHECK(r.bytes_on_disk == size);
  CHECK(r.bytes_received == size);
  const auto ranged = ranged_gets(s, "/f");
  REQUIRE(ranged.size() >= 4);
  std::set<std::string> peers_ports;
  for (const auto& g : ranged) {
    CHECK(g.status == 206);
    CHECK(g.headers.at("if-range") == "\"v1-" + std::to_string(size) + "\"");
    CHECK(g.headers.at("accept-encoding") == "identity");
  }
  // The first GET (no Range) only learnt the content's identity: its body was not read, and
  // the bytes served beyond the file are at most what the sockets held of it.
  CHECK(gets(s, "/f") == ranged.size() + 1);
  CHECK(s.body_bytes_sent("/f") <= size + 2 * MiB);
  // The record ends as an ordinary complete download.
  auto info = find_info(m, "seg");
  REQUIRE(info);
  CHECK(info->status == tt::status::succeeded);
}

TEST_CASE("segments: a new version while segments are in flight starts the whole file over, and it ends as the new one",
          "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 8 * MiB;
  s.add_content("/f", size);
  const auto old_content = s.content("/f");
  transfer_env env;
  auto o = segmented_options(env);
  o.bandwidth_limit = 8 * MiB;  // about a second: the new version comes while segments run
  tt::manager m(env.pool.get_executor(), o);
  const auto req = env.download(s.url("/f"), "f.bin");
  auto f = start_download(m, req, "ver");
  REQUIRE(s.wait_for_body_bytes("/f", 2 * MiB, 30s));
  s.replace_version("/f");
  const auto r = wait_result(f, 60s);
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  const auto got = read_file(req.file);
  CHECK(got.size() == size);
  CHECK(got == s.content("/f"));  // the new version, all of it
  CHECK(got != old_content);
  CHECK(r.restarts >= 1);
  // Every segment asked for the version it was continuing.
  bool new_version_asked = false;
  for (const auto& g : ranged_gets(s, "/f")) {
    REQUIRE(g.headers.count("if-range"));
    new_version_asked = new_version_asked || g.headers.at("if-range") == "\"v2-" + std::to_string(size) + "\"";
  }
  CHECK(new_version_asked);
}

TEST_CASE("segments: one segment whose connection drops again and again does not stop the others",
          "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 4 * MiB;
  s.add_content("/f", size);
  // Requests for the last quarter's bytes are cut after 40 KiB, six times over.
  s.set_fault({.count = 6, .drop_after = 40 * KiB, .min_range_start = 3 * MiB});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), segmented_options(env));
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "drops");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  std::size_t cut = 0, whole_segments_below = 0;
  for (const auto& g : ranged_gets(s, "/f")) {
    const auto from = std::stoull(g.headers.at("range").substr(6));
    if (from >= 3 * MiB && g.body_bytes_sent == 40 * KiB) ++cut;
    if (from < 3 * MiB && g.status == 206 && g.body_bytes_sent >= 256 * KiB) ++whole_segments_below;
  }
  CHECK(cut == 6);
  CHECK(r.attempts >= 7);  // the first, and each connection's retry after a cut
  CHECK(whole_segments_below >= 3);  // the other connections carried on
  // Everything that was cut came again only where it had stopped.
  CHECK(s.body_bytes_sent("/f") <= size + 2 * MiB);
}

TEST_CASE("segments: a server that answers a later segment with the whole content goes back to one connection",
          "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 4 * MiB;
  s.add_content("/f", size);
  s.set_fault({.count = 1, .ignore_range = true, .min_range_start = 1});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), segmented_options(env));
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "no-ranges");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  const auto got = read_file(req.file), want = s.content("/f");
  std::size_t first_diff = 0;
  while (first_diff < std::min(got.size(), want.size()) && got[first_diff] == want[first_diff]) ++first_diff;
  std::string log;
  for (const auto& g : s.requests())
    log += (g.headers.count("range") ? g.headers.at("range") : std::string("-")) + " " + std::to_string(g.status) + " " +
           std::to_string(g.body_bytes_sent) + "\n";
  INFO(log);
  INFO("first difference at " << first_diff << " of " << got.size());
  CHECK(got == want);
  // After the 200, one connection: the last request goes on from what the first segment held.
  const auto all = s.requests();
  REQUIRE(!all.empty());
  bool saw_200_to_range = false;
  for (const auto& g : all) saw_200_to_range = saw_200_to_range || (g.headers.count("range") && g.status == 200);
  CHECK(saw_200_to_range);
  const auto& last = all.back();
  const auto from = last.headers.count("range") ? std::stoull(last.headers.at("range").substr(6)) : 0;
  CHECK(last.status == (from > 0 ? 206u : 200u));
  CHECK(last.body_bytes_sent + from == size);
  CHECK(!r.error);
}

TEST_CASE("segments: bytes that cannot be proven stay on one connection", "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 4 * MiB;
  s.add_content("/none", size, false, false);
  s.add_content("/date-only", size, false, true);  // a Last-Modified without the server's Date
  transfer_env env;
  tt::manager m(env.pool.get_executor(), segmented_options(env));
  for (const std::string path : {"/none", "/date-only"}) {
    INFO(path);
    const auto req = env.download(s.url(path), path.substr(1) + ".bin");
    const auto r = download(m, req, path.substr(1));
    INFO(r.message);
    REQUIRE(r.outcome == tt::outcome::success);
    CHECK(read_file(req.file) == s.content(path));
    CHECK(gets(s, path) == 1);
    CHECK(ranged_gets(s, path).empty());
  }
  // With the caller's SHA-256 the same bytes are provable: several connections.
  const auto req = env.download(s.url("/none"), "proven.bin");
  auto proven = req;
  proven.sha256 = td::sha256_hex(s.content("/none"));
  const auto r = download(m, proven, "proven");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/none"));
  CHECK(ranged_gets(s, "/none").size() >= 4);
}

TEST_CASE("segments: by default one connection starts alone, and the others open when it waits for its data",
          "[transfer][segments]") {
  using namespace std::chrono_literals;
  http_server s;
  constexpr std::uint64_t size = 8 * MiB;
  s.add_content("/f", size);
  http_fault slow;  // the first segment's body comes only after 400 ms: the network is the limit
  slow.count = 2;   // the first GET (the content's identity) and the first segment
  slow.stall = 400ms;
  s.set_fault(slow);
  transfer_env env;
  auto o = env.options();
  o.min_segment_bytes = 256 * KiB;
  REQUIRE(o.ramp_connections);  // the default
  tt::manager m(env.pool.get_executor(), o);
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "ramp");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  std::set<std::uint64_t> carriers;
  for (const auto& g : ranged_gets(s, "/f")) carriers.insert(g.connection);
  CHECK(carriers.size() >= 2);
  CHECK(s.peak_open_connections() >= 2);
}

TEST_CASE("segments: connections to one host stay within the per-host limit across downloads",
          "[transfer][segments]") {
  http_server s;
  constexpr std::uint64_t size = 4 * MiB;
  s.add_content("/a", size);
  s.add_content("/b", size);
  transfer_env env;
  auto o = segmented_options(env);
  o.max_connections_per_host = 2;  // beyond each download's first
  o.bandwidth_limit = 16 * MiB;    // both run at once for a while
  tt::manager m(env.pool.get_executor(), o);
  auto fa = start_download(m, env.download(s.url("/a"), "a.bin"), "a");
  auto fb = start_download(m, env.download(s.url("/b"), "b.bin"), "b");
  const auto a = wait_result(fa, 60s), b = wait_result(fb, 60s);
  INFO(a.message << " / " << b.message);
  REQUIRE(a.outcome == tt::outcome::success);
  REQUIRE(b.outcome == tt::outcome::success);
  CHECK(read_file(env.dir / "a.bin") == s.content("/a"));
  CHECK(read_file(env.dir / "b.bin") == s.content("/b"));
  // Two firsts, two more between them, and the two first responses (closing) at most; without
  // the limit it would be up to 4 + 4 + 2.
  CHECK(s.peak_open_connections() <= 6);
  CHECK(ranged_gets(s, "/a").size() + ranged_gets(s, "/b").size() >= 4);
}
