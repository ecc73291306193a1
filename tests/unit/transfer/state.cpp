// The state store: records, crash recovery, damaged records, the directory lock, exactly-once
// results, housekeeping.
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/record.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <limits>

#include <unistd.h>

using namespace tether::test;
using tether::error;
namespace td = tether::transfer::detail;

namespace {

td::record sample_record() {
  td::record r;
  r.id = "sample";
  r.url = "http://127.0.0.1:1/x";
  r.file = "/tmp/x";
  r.checkpoint_bytes = 64u << 10;
  r.length = 200'000;
  r.offset = 128u << 10;
  r.digests = {std::string(32, 'a'), std::string(32, 'b')};  // XXH3-128
  r.etag = "\"e\"";
  r.created_ms = r.updated_ms = 1;
  return r;
}


}  // namespace

TEST_CASE("record: encode and decode round trip", "[transfer][state]") {
  auto r = sample_record();
  tt::result res;
  res.id = r.id;
  res.outcome = tt::outcome::rejected;
  res.error = make_error_code(error::rejected);
  res.http_status = 404;
  res.retry_after = std::chrono::seconds{7};
  r.result = res;
  r.status = tt::status::failed;
  std::string why;
  auto back = td::decode_record(td::encode_record(r), why);
  INFO(why);
  REQUIRE(back.has_value());
  CHECK(back->id == r.id);
  CHECK(back->offset == r.offset);
  CHECK(back->digests == r.digests);
  CHECK(back->chunk_digest == td::hash_algorithm::xxh3_128);
  CHECK(back->length == r.length);
  REQUIRE(back->result);
  CHECK(back->result->error == error::rejected);
  CHECK(back->result->http_status == 404);
  CHECK(back->result->retry_after == std::chrono::seconds{7});
}

TEST_CASE("record: digests of each algorithm, and a record an earlier version wrote", "[transfer][state]") {
  // Known answers: FIPS 180-2 for SHA-256, xxHash's own xxhsum -H2 for XXH3-128 (canonical form).
  struct row {
    td::hash_algorithm alg;
    std::string in, hex;
  };
  const row rows[] = {
      {td::hash_algorithm::sha256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {td::hash_algorithm::sha1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {td::hash_algorithm::xxh3_128, "", "99aa06d3014798d86001c324468d497f"},
      {td::hash_algorithm::xxh3_128, "abc", "06b05ab6733a618578af5f94892f3950"},
  };
  for (const auto& [alg, in, hex] : rows) {
    INFO(td::to_string(alg) << " of '" << in << "'");
    td::hasher h(alg);
    h.update(in.data(), in.size());
    td::hasher copy(h);
    CHECK(h.hex_digest() == hex);
    CHECK(copy.hex_digest() == hex);
    CHECK(h.hex_digest() == td::hasher(alg).hex_digest());  // it started over
    CHECK(td::is_digest_hex(hex, alg));
  }
  CHECK_FALSE(td::is_digest_hex(std::string(64, 'a'), td::hash_algorithm::xxh3_128));
  CHECK_FALSE(td::is_digest_hex(std::string(31, 'a') + "g", td::hash_algorithm::xxh3_128));

  // Schema 1 had no "chunk_digest": its chunks are SHA-256, and stay readable.
  auto j = nlohmann::json::parse(td::encode_record(sample_record()));
  j["schema"] = 1;
  j.erase("chunk_digest");
  j["digests"] = {std::string(64, 'a'), std::string(64, 'b')};
  std::string why;
  auto old = td::decode_record(j.dump(), why);
  INFO(why);
  REQUIRE(old.has_value());
  CHECK(old->chunk_digest == td::hash_algorithm::sha256);
  // Written again, it says what its digests are.
  auto again = td::decode_record(td::encode_record(*old), why);
  REQUIRE(again.has_value());
  CHECK(again->chunk_digest == td::hash_algorithm::sha256);
  CHECK(again->digests == old->digests);
}

TEST_CASE("record: every kind of damage is named", "[transfer][state]") {
  const auto good = nlohmann::json::parse(td::encode_record(sample_record()));
  auto check = [](const nlohmann::json& j, const std::string& expect, error e = error::state_corrupt) {
    std::string why;
    auto r = td::decode_record(j.is_string() ? j.get<std::string>() : j.dump(), why);
    INFO(j.dump() << " -> " << why);
    REQUIRE(!r.has_value());
    CHECK(r.error() == e);
    CHECK(why.find(expect) != std::string::npos);
  };
  check(nlohmann::json("{not json"), "not valid JSON");
  check(nlohmann::json::array(), "not a JSON object");
  auto j = good;
  j.erase("id");
  check(j, "missing \"id\"");
  j = good;
  j["offset"] = -5;
  check(j, "\"offset\" is not a non-negative integer");
  j = good;
  j["offset"] = 100'000;  // not a checkpoint boundary
  check(j, "checkpoint boundary");
  j = good;
  j["digests"] = {std::string(32, 'a')};
  check(j, "\"digests\" has 1 entries");
  j = good;
  j["digests"] = {"zz", "yy"};
  check(j, "other than xxh3-128 hex digests");
  j = good;
  j["digests"] = {std::string(64, 'a'), std::string(64, 'b')};  // SHA-256s where XXH3s belong
  check(j, "other than xxh3-128 hex digests");
  j = good;
  j["chunk_digest"] = "md5";
  check(j, "\"chunk_digest\" has an unknown value");
  j = good;
  j.erase("chunk_digest");
  check(j, "missing \"chunk_digest\"");
  j = good;
  j["schema"] = 1;  // schema 1 knew only SHA-256 chunks
  check(j, "other than sha256 hex digests");
  j = good;
  j["schema"] = 0;
  check(j, "unknown schema 0");
  j = good;
  j["offset"] = 300'000;
  check(j, "beyond \"length\"");
  for (const char* field : {"url", "final_url", "upload_url"}) {
    for (const char* bad : {"::not a url::", "ws://127.0.0.1/x", "ftp://example.com/x", "http://"}) {
      j = good;
      j[field] = bad;
      check(j, std::string("\"") + field + "\" is not a valid http(s) URL");
    }
  }
  j = good;
  j["status"] = "exploded";
  check(j, "\"status\" has an unknown value");
  j = good;
  j["schema"] = 99;
  check(j, "newer version", error::state_version);
  j = good;
  j["file"] = "relative/path";
  check(j, "absolute path");
  j = good;
  j["checkpoint_bytes"] = 1000;
  check(j, "64 KiB");
  j = good;
  j["result"] = {{"outcome", "success"}};
  check(j, "disagree");
  check(nlohmann::json(std::string(2u << 20, ' ')), "larger than 1 MiB");
}

TEST_CASE("record: file names are safe for any id", "[transfer][state]") {
  CHECK(td::file_stem("abc-1_2.x") == "abc-1_2.x");
  CHECK(td::file_stem("../etc/passwd") == "%2E.%2Fetc%2Fpasswd");
  CHECK(td::file_stem("..") == "%2E.");
  CHECK(td::file_stem("a b/c") == "a%20b%2Fc");
  const auto long_stem = td::file_stem(std::string(1000, 'x'));
  CHECK(long_stem.size() < 200);
  CHECK(long_stem != td::file_stem(std::string(1001, 'x')));
}

TEST_CASE("state: the record tracks checkpoints whose data is synced and digested", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  pausing_manager pm(env, 3 * (64u << 10), env.options());
  pm.run_until_paused(env.download(s.url("/f"), "f.bin"), "rec");
  const auto text = read_file(env.state / "rec.json");
  std::string why;
  auto r = td::decode_record(text, why);
  REQUIRE(r.has_value());
  CHECK(r->status == tt::status::paused);
  CHECK(r->offset >= 3 * (64u << 10));
  CHECK(r->offset % (64u << 10) == 0);
  CHECK(r->length == 1'000'000u);
  CHECK(r->etag == "\"v1-1000000\"");
  // Each recorded digest matches the served content.
  const auto content = s.content("/f");
  REQUIRE(r->digests.size() == r->offset / (64u << 10));
  REQUIRE(r->chunk_digest == td::hash_algorithm::xxh3_128);
  for (std::size_t i = 0; i < r->digests.size(); ++i) {
    td::hasher h(td::hash_algorithm::xxh3_128);
    h.update(content.data() + i * (64u << 10), 64u << 10);
    CHECK(r->digests[i] == h.hex_digest());
  }
  // The partial file holds at least the checkpointed bytes, and they are right.
  const auto part = read_file(env.state / "rec.part");
  REQUIRE(part.size() >= r->offset);
  CHECK(part.substr(0, r->offset) == content.substr(0, r->offset));
}

TEST_CASE("state: after a crash the partial data is cut back and re-verified", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  auto req = env.download(s.url("/f"), "f.bin");
  std::uint64_t checkpoint = 0;
  {
    pausing_manager pm(env, 5 * (64u << 10), env.options());
    pm.run_until_paused(req, "crash");
    checkpoint = find_info(*pm.m, "crash")->bytes_durable;
  }
  REQUIRE(checkpoint >= 5 * (64u << 10));
  // What a crash can leave: garbage after the checkpoint (a torn tail) and, worse, damage
  // inside it (a zeroed block the file system lost).
  {
    std::fstream f(env.state / "crash.part", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(checkpoint));
    f << std::string(50'000, 'T');
    f.seekp(2 * (64 << 10) + 100);
    f << std::string(4096, '\0');
  }
  const auto served_before = s.body_bytes_sent("/f");
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, req, "crash");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  // Chunks 0 and 1 verified and kept; everything from the damaged chunk 2 fetched again.
  const auto log = s.requests();
  CHECK(log.back().headers.at("range") == "bytes=" + std::to_string(2 * (64 << 10)) + "-");
  CHECK(s.body_bytes_sent("/f") - served_before == 1'000'000 - 2 * (64u << 10));
}

TEST_CASE("state: a download an earlier version left (schema 1, SHA-256 chunks) resumes where it stopped",
          "[transfer][state]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  auto req = env.download(s.url("/f"), "f.bin");
  leave_paused(env, req, "old", 5 * (64u << 10));
  // The record as schema 1 wrote it: no "chunk_digest", a SHA-256 per chunk.
  auto j = nlohmann::json::parse(read_file(env.state / "old.json"));
  const auto offset = j["offset"].get<std::uint64_t>();
  REQUIRE(offset >= 5 * (64u << 10));
  const auto content = s.content("/f");
  auto digests = nlohmann::json::array();
  for (std::uint64_t at = 0; at < offset; at += 64u << 10)
    digests.push_back(td::sha256_hex(std::string_view(content).substr(at, 64u << 10)));
  j["schema"] = 1;
  j.erase("chunk_digest");
  j["digests"] = digests;
  write_file(env.state / "old.json", j.dump());
  const auto served_before = s.body_bytes_sent("/f");
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, req, "old");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == content);
  // Its chunks were checked as SHA-256 and kept: only the rest was fetched.
  CHECK(s.body_bytes_sent("/f") - served_before == 1'000'000 - offset);
}

TEST_CASE("state: a download whose chunk size was raised for its length resumes from its checkpoint",
          "[transfer][state]") {
  // 80 MiB in chunks of at most 1024 per record: 128 KiB chunks, not the configured 64 KiB. The
  // digests hashed while writing must use the raised size, or the next run finds them wrong.
  constexpr std::uint64_t size = 80ull << 20;
  http_server s;
  s.add_content("/f", size);
  transfer_env env;
  auto o = env.options();
  o.connections_per_download = 1;
  const auto req = env.download(s.url("/f"), "f.bin");
  {
    pausing_manager pm(env, 3 * (128u << 10), o);
    pm.run_until_paused(req, "raised");
  }
  auto j = nlohmann::json::parse(read_file(env.state / "raised.json"));
  REQUIRE(j["checkpoint_bytes"].get<std::uint64_t>() == (128u << 10));
  const auto offset = j["offset"].get<std::uint64_t>();
  REQUIRE(offset >= 3 * (128u << 10));
  j.erase("bandwidth_limit");  // the pausing run's 2 MiB/s is not this test's subject
  write_file(env.state / "raised.json", j.dump());
  const auto served_before = s.body_bytes_sent("/f");
  tt::manager m(env.pool.get_executor(), o);
  const auto r = download(m, req, "raised");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(s.body_bytes_sent("/f") - served_before == size - offset);  // every recorded chunk held
}

TEST_CASE("state: a damaged record is set aside and affects nobody else", "[transfer][state]") {
  http_server s;
  s.add_content("/a", 70'000);
  s.add_content("/b", 80'000);
  transfer_env env;
  {
    tt::manager m(env.pool.get_executor(), env.options());
    REQUIRE(download(m, env.download(s.url("/a"), "a.bin"), "a").outcome == tt::outcome::success);
    REQUIRE(download(m, env.download(s.url("/b"), "b.bin"), "b").outcome == tt::outcome::success);
  }
  write_file(env.state / "a.json", "{\"schema\": 1, \"id\": \"a\", \"offs");  // torn
  tt::manager m(env.pool.get_executor(), env.options());
  const auto all = m.list();
  REQUIRE(all.size() == 2);
  const auto bad = std::find_if(all.begin(), all.end(), [](auto& i) { return !i.problem.empty(); });
  REQUIRE(bad != all.end());
  CHECK(bad->id == "a");
  CHECK(bad->problem == "damaged record (not valid JSON), set aside as a.json.corrupt");
  CHECK(bad->file.filename() == "a.json.corrupt");
  CHECK(std::filesystem::exists(env.state / "a.json.corrupt"));
  auto b = find_info(m, "b");
  REQUIRE(b);
  CHECK(b->status == tt::status::succeeded);
  // The id is free again: a new download under it works.
  const auto r = download(m, env.download(s.url("/a"), "a2.bin"), "a");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(read_file(env.dir / "a2.bin") == s.content("/a"));
  // prune removes the set-aside file (and its report).
  CHECK(m.prune(0s) >= 1);
  CHECK(!std::filesystem::exists(env.state / "a.json.corrupt"));
}

TEST_CASE("state: a record with an invalid URL is set aside with its partial data, never crashes", "[transfer][state]") {
  http_server s;
  s.add_content("/a", 1'000'000);
  s.add_content("/b", 80'000);
  transfer_env env;
  leave_paused(env, env.download(s.url("/a"), "a.bin"), "alpha", 128u << 10);
  REQUIRE(std::filesystem::file_size(env.state / "alpha.part") >= (128u << 10));
  auto j = nlohmann::json::parse(read_file(env.state / "alpha.json"));
  j["url"] = "::not a url::";
  j["status"] = "waiting";  // unfinished, as after a crash: resume_all would take it
  write_file(env.state / "alpha.json", j.dump());
  const std::string expected =
      "damaged record (\"url\" is not a valid http(s) URL), set aside as alpha.json.corrupt with its partial data "
      "as alpha.part.corrupt";
  for (int process = 0; process < 2; ++process) {  // the reason survives into every later manager
    tt::manager m(env.pool.get_executor(), env.options());
    const auto bad = find_info(m, "alpha");
    REQUIRE(bad);
    CHECK(bad->problem == expected);
    CHECK(resume_all(m).empty());  // the damaged transfer is not resumed, nothing crashes
    if (process == 0) {
      const auto r = download(m, env.download(s.url("/b"), "b.bin"), "beta");
      CHECK(r.outcome == tt::outcome::success);
    }
  }
  // Renamed, never deleted: the record and its partial data are still there for a person.
  CHECK(std::filesystem::exists(env.state / "alpha.json.corrupt"));
  CHECK(std::filesystem::file_size(env.state / "alpha.part.corrupt") >= (128u << 10));
  CHECK(!std::filesystem::exists(env.state / "alpha.part"));
}

TEST_CASE("state: a record that cannot be read is left alone, its data kept, and read next time", "[transfer][state]") {
  http_server s;
  s.add_content("/a", 1'000'000);
  transfer_env env;
  leave_paused(env, env.download(s.url("/a"), "a.bin"), "alpha", 128u << 10);
  {
    auto j = nlohmann::json::parse(read_file(env.state / "alpha.json"));
    j["status"] = "waiting";  // unfinished, as after a crash: resume_all takes it
    write_file(env.state / "alpha.json", j.dump());
  }
  const auto record_text = read_file(env.state / "alpha.json");
  const auto part_size = std::filesystem::file_size(env.state / "alpha.part");
  {
    // Opening that one record fails (EMFILE): an unreadable record, not a damaged one.
    td::set_file_fault([](td::file_op op, const std::filesystem::path& p) {
      return op == td::file_op::open && p.filename() == "alpha.json" ? EMFILE : 0;
    });
    struct unset {
      ~unset() { td::set_file_fault({}); }
    } restore;
    tt::manager m(env.pool.get_executor(), env.options());
    const auto i = find_info(m, "alpha");
    REQUIRE(i);
    CHECK(i->problem.find("record cannot be read") != std::string::npos);
    CHECK(i->problem.find("tried again next time") != std::string::npos);
    CHECK(resume_all(m).empty());
    // Its id stays reserved: a new download under it would overwrite the record.
    const auto r = download(m, env.download(s.url("/a"), "a.bin"), "alpha");
    CHECK(r.outcome == tt::outcome::failed);
    CHECK(r.message.find("cannot be read") != std::string::npos);
    CHECK(r.message.find("(open " + (env.state / "alpha.json").string() + ")") != std::string::npos);
    CHECK(m.prune(0s) == 0);  // neither the record nor its partial data is stray
  }
  CHECK(read_file(env.state / "alpha.json") == record_text);
  CHECK(std::filesystem::file_size(env.state / "alpha.part") == part_size);
  CHECK(!std::filesystem::exists(env.state / "alpha.json.corrupt"));
  // Next time it reads, and the transfer finishes from where it was.
  tt::manager m(env.pool.get_executor(), env.options());
  const auto results = resume_all(m);
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == tt::outcome::success);
  CHECK(read_file(env.dir / "a.bin") == s.content("/a"));
}

TEST_CASE("state: a cancel is not handed back by resume_all as a failure", "[transfer][state]") {
  http_server s;
  s.add_content("/a", 1'000'000);
  transfer_env env;
  {
    pausing_manager pm(env, 128u << 10, env.options());
    pm.run_until_paused(env.download(s.url("/a"), "a.bin"), "cx");
    REQUIRE(!pm.m->cancel("cx"));  // nobody waits for it: the user's own decision
    CHECK(find_info(*pm.m, "cx")->status == tt::status::cancelled);
  }
  tt::manager m(env.pool.get_executor(), env.options());
  CHECK(resume_all(m).empty());
  CHECK(find_info(m, "cx")->status == tt::status::cancelled);
}

TEST_CASE("state: managers share a directory, each transfer run by one of them at a time", "[transfer][state]") {
  http_server s;
  s.add_content("/a", 2'000'000);
  s.add_content("/b", 300'000);
  transfer_env env;
  tt::manager first(env.pool.get_executor(), env.options());
  tt::manager second(env.pool.get_executor(), env.options());  // the directory is not locked whole
  auto slow = env.download(s.url("/a"), "a.bin");
  slow.bandwidth_limit = 4u << 20;
  auto running = start_download(first, slow, "a");
  REQUIRE(s.wait_for_body_bytes("/a", 1, 10s));
  // The same id in the other manager: refused, naming the process that runs it.
  const auto refused = download(second, slow, "a");
  CHECK(refused.error == error::state_locked);
  CHECK(refused.message.find("pid " + std::to_string(::getpid())) != std::string::npos);
  CHECK(second.cancel("a") == error::state_locked);
  // Another id in the other manager runs at the same time.
  const auto other = download(second, env.download(s.url("/b"), "b.bin"), "b");
  CHECK(other.outcome == tt::outcome::success);
  const auto first_result = wait_result(running);
  CHECK(first_result.outcome == tt::outcome::success);
  CHECK(read_file(env.dir / "a.bin") == s.content("/a"));
  // Once the first is done, the second manager sees the finished transfer as it is on disk.
  const auto replay = download(second, slow, "a");
  CHECK(replay.outcome == tt::outcome::success);
  CHECK(replay.attempts == first_result.attempts);  // the stored result, not a new run
}

TEST_CASE("state: exactly-once results across restarts, remove forgets", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 100'000);
  transfer_env env;
  const auto req = env.download(s.url("/f"), "f.bin");
  {
    tt::manager m(env.pool.get_executor(), env.options());
    auto r = download(m, req, "once");
    REQUIRE(r.outcome == tt::outcome::success);
  }
  // Mark the result as not delivered, as if the process died between completion and handoff.
  {
    std::string why;
    auto rec = td::decode_record(read_file(env.state / "once.json"), why);
    REQUIRE(rec.has_value());
    rec->result_delivered = false;
    write_file(env.state / "once.json", td::encode_record(*rec));
  }
  const auto requests_before = s.requests().size();
  tt::manager m(env.pool.get_executor(), env.options());
  const auto results = resume_all(m);
  REQUIRE(results.size() == 1);
  CHECK(results[0].id == "once");
  CHECK(results[0].outcome == tt::outcome::success);
  // Once: a second resume_all has nothing; download() answers from the record, no request.
  CHECK(resume_all(m).empty());
  const auto again = download(m, req, "once");
  CHECK(again.outcome == tt::outcome::success);
  CHECK(again.sha256 == results[0].sha256);
  CHECK(s.requests().size() == requests_before);
  // Another request under the same id is a mistake, not a reattach.
  CHECK(download(m, env.download(s.url("/other"), "f.bin"), "once").error == error::invalid_argument);
  CHECK(!m.remove("once"));
  CHECK(!find_info(m, "once"));
  CHECK(!std::filesystem::exists(env.state / "once.json"));
  CHECK(m.remove("once") == error::not_found);
}

TEST_CASE("state: resume_all finishes what a previous process left unfinished", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 600'000);
  transfer_env env;
  auto req = env.download(s.url("/f"), "f.bin");
  leave_paused(env, req, "left", 2 * (64u << 10));
  // Paused transfers wait for the application; an interrupted one (status running when the
  // process died) is resumed. Make it look interrupted.
  {
    std::string why;
    auto rec = td::decode_record(read_file(env.state / "left.json"), why);
    REQUIRE(rec.has_value());
    rec->status = tt::status::running;
    rec->bandwidth_limit = 0;
    write_file(env.state / "left.json", td::encode_record(*rec));
  }
  tt::manager m(env.pool.get_executor(), env.options());
  const auto results = resume_all(m);
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(s.requests().back().headers.count("range") == 1);
}

TEST_CASE("state: prune removes old finished records and stray files only", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 10'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  REQUIRE(download(m, env.download(s.url("/f"), "f.bin"), "done").outcome == tt::outcome::success);
  write_file(env.state / "stray.part", "x");
  CHECK(m.prune(std::chrono::hours{1}) == 0);  // all too young
  CHECK(find_info(m, "done"));
  CHECK(m.prune(0s) == 2);
  CHECK(!find_info(m, "done"));
  CHECK(!std::filesystem::exists(env.state / "stray.part"));
  CHECK(std::filesystem::exists(env.dir / "f.bin"));  // the user's file is theirs
}

TEST_CASE("state: a finished download is replayed only while its file is intact", "[transfer][state]") {
  http_server s;
  s.add_content("/f", 300'000);
  transfer_env env;
  const auto req = env.download(s.url("/f"), "f.bin");
  tt::manager m(env.pool.get_executor(), env.options());
  REQUIRE(download(m, req, "kept").outcome == tt::outcome::success);
  auto gets = [&] {
    std::size_t n = 0;
    for (auto& r : s.requests()) n += r.method == "GET";
    return n;
  };
  // Intact: the stored result, no request.
  auto before = gets();
  CHECK(download(m, req, "kept").outcome == tt::outcome::success);
  CHECK(gets() == before);
  // Deleted: fetched again.
  std::filesystem::remove(req.file);
  auto r = download(m, req, "kept");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(gets() == before + 1);
  CHECK(read_file(req.file) == s.content("/f"));
  // Changed in place (same size, another byte): fetched again, the change undone.
  {
    auto text = read_file(req.file);
    text[10] = static_cast<char>(text[10] ^ 1);
    write_file(req.file, text);
  }
  before = gets();
  r = download(m, req, "kept");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(gets() == before + 1);
  CHECK(read_file(req.file) == s.content("/f"));
}

TEST_CASE("state: a failed or cancelled transfer runs again when asked again", "[transfer][state]") {
  http_server s;
  transfer_env env;
  const auto req = env.download(s.url("/late"), "late.bin");
  {
    tt::manager m(env.pool.get_executor(), env.options());
    CHECK(download(m, req, "late").error == error::rejected);  // 404: not there yet
    s.add_content("/late", 100'000);
    // The same call again is a new attempt, not the stored failure.
    const auto r = download(m, req, "late");
    INFO(r.message);
    CHECK(r.outcome == tt::outcome::success);
    CHECK(read_file(req.file) == s.content("/late"));
  }
  // A cancel: asked again, it runs from the start.
  s.add_content("/c", 2'000'000);
  const auto creq = env.download(s.url("/c"), "c.bin");
  {
    pausing_manager pm(env, 128u << 10, env.options());
    pm.run_until_paused(creq, "c");
    CHECK(!pm.m->cancel("c"));
  }
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, creq, "c");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(read_file(creq.file) == s.content("/c"));
}

TEST_CASE("state: a failed download keeps what is durable, asked again, it continues from there",
          "[transfer][state]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  auto req = env.download(s.url("/f"), "f.bin");
  req.bandwidth_limit = 256u << 10;  // ~4 s for the whole file
  std::uint64_t durable = 0;
  {
    auto o = env.options();
    o.resource_deadline = std::chrono::seconds{1};
    tt::manager m(env.pool.get_executor(), o);
    const auto r = download(m, req, "slow");
    INFO(r.message << " " << r.bytes_received << " attempts " << r.attempts);
    CHECK(r.error == error::deadline_exceeded);
    durable = find_info(m, "slow")->bytes_durable;
  }
  REQUIRE(durable > 0);
  REQUIRE(std::filesystem::exists(env.state / "slow.part"));
  const auto log_before = s.requests().size();
  req.bandwidth_limit = 0;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, req, "slow");
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  const auto log = s.requests();
  REQUIRE(log.size() > log_before);
  CHECK(log[log_before].headers.at("range") == "bytes=" + std::to_string(durable) + "-");
}

TEST_CASE("state: hostile records at the manager: every field mangled, truncated, empty, binary", "[transfer][state]") {
  http_server s;
  s.add_content("/v", 400'000);
  s.add_content("/o", 50'000);
  transfer_env env;
  leave_paused(env, env.download(s.url("/v"), "v.bin"), "victim", 128u << 10);
  const auto original = read_file(env.state / "victim.json");
  const auto part = read_file(env.state / "victim.part");
  const auto j = nlohmann::json::parse(original);
  REQUIRE(j.is_object());

  struct mutation {
    std::string name, text;
    bool must_be_damaged;
  };
  std::vector<mutation> cases;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& key = it.key();
    auto with = [&](nlohmann::json v) {
      auto m = j;
      m[key] = std::move(v);
      return m.dump();
    };
    // A wrong type: every field has one type; the other kinds are all wrong.
    const bool is_string = it->is_string(), is_number = it->is_number(), is_array = it->is_array();
    cases.push_back({key + " as an object", with(nlohmann::json::object({{"x", 1}})), true});
    cases.push_back({key + " as a list", with(nlohmann::json::array({1, "two"})), !is_array});
    cases.push_back({key + " as text", with("not a " + key), !is_string});
    cases.push_back({key + " as a number", with(-7), !is_number});
    cases.push_back({key + " as 1e300", with(1e300), true});
    cases.push_back({key + " as 2^64 - 1", with(std::numeric_limits<std::uint64_t>::max()), !is_number});
    auto dropped = j;
    dropped.erase(key);
    cases.push_back({"without " + key, dropped.dump(), false});
  }
  for (const auto* url_key : {"url", "final_url"}) {
    for (const auto* bad_url : {"::not a url::", "ftp://h/x", "ws://h/x", "http://", "http://h:99999/x", ""}) {
      auto m = j;
      m[url_key] = bad_url;
      cases.push_back({std::string(url_key) + " = '" + bad_url + "'", m.dump(), std::string(url_key) == "url" || *bad_url});
    }
  }
  {
    auto m = j;
    m["digests"] = std::vector<std::string>(5000, std::string(64, 'a'));
    cases.push_back({"5000 digests", m.dump(), true});
    m["digests"] = std::vector<std::string>(40000, std::string(64, 'a'));
    cases.push_back({"40000 digests (over 1 MiB)", m.dump(), true});
    m = j;
    m["offset"] = std::uint64_t{1} << 62;
    cases.push_back({"offset 2^62", m.dump(), true});
    m = j;
    m["checkpoint_bytes"] = 1;
    cases.push_back({"checkpoint_bytes 1", m.dump(), true});
    m = j;
    m["schema"] = 0;
    cases.push_back({"schema 0", m.dump(), true});
  }
  cases.push_back({"truncated", original.substr(0, original.size() / 2), true});
  cases.push_back({"empty", "", true});
  std::string binary(4096, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>((i * 131) ^ (i >> 3));
  cases.push_back({"binary", binary, true});
  cases.push_back({"a JSON array", "[1,2,3]", true});
  cases.push_back({"deeply nested", std::string(100000, '[') + std::string(100000, ']'), true});

  int reported = 0;
  for (const auto& c : cases) {
    INFO(c.name);
    std::filesystem::remove_all(env.state);
    std::filesystem::create_directories(env.state);
    write_file(env.state / "victim.json", c.text);
    write_file(env.state / "victim.part", part);
    tt::manager m(env.pool.get_executor(), env.options());
    // The others go on.
    const auto other = download(m, env.download(s.url("/o"), "o.bin"), "other");
    CHECK(other.outcome == tt::outcome::success);
    const auto v = find_info(m, "victim");
    if (v && !v->problem.empty()) {
      ++reported;
      CHECK(v->problem.find("damaged record (") != std::string::npos);
      // Set aside with its data, never deleted.
      CHECK(std::filesystem::exists(env.state / "victim.json.corrupt"));
      CHECK(read_file(env.state / "victim.part.corrupt") == part);
    } else {
      CHECK(!c.must_be_damaged);
    }
  }
  WARN(cases.size() << " hostile records, " << reported << " reported as damaged with their reason");
}
