// Uploads against the loopback fixture: plain PUT and tus 1.0 (creation, HEAD, PATCH,
// termination), resumption across processes, source changes.
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/file.hpp>

#include <atomic>
#include <future>
#include <random>

#include <sys/time.h>

using namespace tether::test;
using tether::error;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

tt::request upload_request(const transfer_env& env, const std::string& url, const std::string& name,
                           tt::upload_protocol p = tt::upload_protocol::tus) {
  tt::request r;
  r.url = url;
  r.file = env.dir / name;
  r.protocol = p;
  r.chunk_size = 64u << 10;
  return r;
}

std::vector<http_request_record> requests_of(const http_server& s, const std::string& method) {
  std::vector<http_request_record> out;
  for (auto& r : s.requests())
    if (r.method == method) out.push_back(r);
  return out;
}

std::size_t count(const http_server& s, const std::string& method) { return requests_of(s, method).size(); }

/// Starts a tus upload of `data` (as src.bin) in a manager that pauses it once `at` bytes are
/// acknowledged, then goes away (as a process would); returns the request.
tt::request paused_upload(const http_server& s, transfer_env& env, const std::string& data, const std::string& id,
                          std::uint64_t at) {
  write_file(env.dir / "src.bin", data);
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  pausing_manager pm(env, at, env.options());
  pm.run_until_paused(req, id, tt::kind::upload);
  return req;
}

/// Uploads `data` (as src.bin) with tus to `s` in a fresh manager; requires success.
tt::result tus_upload_ok(const http_server& s, transfer_env& env, const std::string& data, const std::string& id) {
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, upload_request(env, s.url("/files/"), "src.bin"), id);
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  return r;
}


}  // namespace

TEST_CASE("upload: plain PUT sends exactly the file", "[transfer][upload]") {
  http_server s;
  transfer_env env;
  const auto data = random_bytes(300'000, 1);
  write_file(env.dir / "src.bin", data);
  auto o = env.options();
  o.report_sha256 = true;
  tt::manager m(env.pool.get_executor(), o);
  const auto r = upload(m, upload_request(env, s.url("/put/x"), "src.bin", tt::upload_protocol::put), "put");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.http_status == 201);
  CHECK(r.sha256 == tt::detail::sha256_hex(data));
  CHECK(s.put_bodies().at("/put/x") == data);
}

TEST_CASE("upload: an interrupted plain PUT starts over from zero, and says so", "[transfer][upload]") {
  http_server s;
  http_fault f;
  f.status = 503;
  f.retry_after = "0";
  s.set_fault(f);
  transfer_env env;
  const auto data = random_bytes(300'000, 15);
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, upload_request(env, s.url("/put/y"), "src.bin", tt::upload_protocol::put), "again");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.restarts == 1);
  CHECK(r.attempts == 2);
  CHECK(r.bytes_received == 2 * data.size());  // the whole file went twice
  CHECK(s.put_bodies().at("/put/y") == data);
  CHECK(count(s, "PUT") == 2);
}

TEST_CASE("upload: tus creation, chunked PATCHes, the server's offset is the truth", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(300'000, 2);
  const auto r = tus_upload_ok(s, env, data, "tus");
  const auto uploads = s.tus_uploads();
  REQUIRE(uploads.size() == 1);
  CHECK(uploads.begin()->second == data);
  CHECK(r.location == s.url("/files/" + uploads.begin()->first));
  CHECK(r.bytes_on_disk == data.size());
  CHECK(count(s, "POST") == 1);
  CHECK(count(s, "PATCH") == 5);  // 300,000 bytes in 64 KiB chunks
  for (auto& req : s.requests()) {
    if (req.method == "OPTIONS") continue;
    CHECK(req.headers.at("tus-resumable") == "1.0.0");
    if (req.method == "PATCH") CHECK(req.headers.at("content-type") == "application/offset+octet-stream");
    if (req.method == "POST") CHECK(req.headers.at("upload-length") == "300000");
  }
}

TEST_CASE("upload: tus resumes in a new process from the server's offset (HEAD first)", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(1'000'000, 3);
  write_file(env.dir / "src.bin", data);
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  // PATCHes on checkpoint boundaries, and across them (the digests then span two PATCHes).
  req.chunk_size = GENERATE(64u << 10, 100'000u);
  {
    pausing_manager pm(env, 3 * (64u << 10), env.options());
    pm.run_until_paused(req, "resume", tt::kind::upload);
  }
  const auto patches_before = count(s, "PATCH");
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, req, "resume");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(s.tus_uploads().begin()->second == data);
  CHECK(count(s, "POST") == 1);  // the same upload continued
  // The new process asked the server first, then continued from its offset.
  const auto log = s.requests();
  std::size_t first_new = 0, seen = 0;
  for (std::size_t i = 0; i < log.size(); ++i)
    if (log[i].method == "PATCH" && ++seen == patches_before + 1) first_new = i;
  REQUIRE(first_new > 0);
  CHECK(log[first_new - 1].method == "HEAD");
  CHECK(std::stoull(log[first_new].headers.at("upload-offset")) >= 3 * (64u << 10));
}

TEST_CASE("upload: a source changed between restarts is refused, not uploaded half and half", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(1'000'000, 4);
  const auto req = paused_upload(s, env, data, "changed", 2 * (64u << 10));
  SECTION("a new size or modification time") {
    write_file(env.dir / "src.bin", random_bytes(1'000'001, 5));
  }
  SECTION("the same size and time, other bytes in the part already sent") {
    struct stat st{};
    REQUIRE(::stat((env.dir / "src.bin").c_str(), &st) == 0);
    auto changed = data;
    changed[1000] = static_cast<char>(~changed[1000]);
    write_file(env.dir / "src.bin", changed);
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, (env.dir / "src.bin").c_str(), times, 0) == 0);
  }
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, req, "changed");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::source_changed);
  CHECK(r.message.find("changed") != std::string::npos);
}

TEST_CASE("upload: an upload the server forgot (404) starts again, reported", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(500'000, 6);
  const auto req = paused_upload(s, env, data, "gone", 64u << 10);
  // The server loses it (expired, cleaned up by an operator).
  s.forget_tus_upload(s.tus_uploads().begin()->first);
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, req, "gone");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.restarts == 1);
  CHECK(count(s, "POST") == 2);
  auto uploads = s.tus_uploads();
  REQUIRE(uploads.size() == 1);
  CHECK(uploads.begin()->second == data);
}

TEST_CASE("upload: cancel terminates the tus upload on the server", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  write_file(env.dir / "src.bin", random_bytes(1'000'000, 7));
  auto o = env.options();
  o.progress_interval = 0ms;
  auto mp = std::make_shared<tt::manager*>(nullptr);
  auto fired = std::make_shared<std::atomic<bool>>(false);
  o.on_progress = [mp, fired](const tt::progress& p) {
    if (p.bytes_durable > 0 && !fired->exchange(true)) (*mp)->cancel(p.id);
  };
  tt::manager m(env.pool.get_executor(), o);
  *mp = &m;
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  req.bandwidth_limit = 2u << 20;
  const auto r = upload(m, req, "cancel");
  CHECK(r.error == error::cancelled);
  CHECK(count(s, "DELETE") == 1);
  CHECK(s.tus_uploads().empty());
}

TEST_CASE("upload: tus checksum extension, every PATCH carries a digest the server verifies", "[transfer][upload]") {
  http_server s;
  tus_options o;
  std::string expect;
  SECTION("sha256 preferred when offered") {
    o.checksum_algorithms = "sha1, sha256";
    expect = "sha256 ";
  }
  SECTION("sha1 when that is all the server knows") {
    o.checksum_algorithms = "sha1";
    expect = "sha1 ";
  }
  s.enable_tus(o);
  transfer_env env;
  const auto data = random_bytes(300'000, 8);
  const auto r = tus_upload_ok(s, env, data, "sum");
  CHECK(s.tus_uploads().begin()->second == data);
  const auto patches = requests_of(s, "PATCH");
  CHECK(patches.size() == 5);
  for (auto& req : patches) {
    CHECK(req.status == 204);  // the server checked the digest and took the chunk
    CHECK(req.headers.at("upload-checksum").rfind(expect, 0) == 0);
  }
}

TEST_CASE("upload: a chunk damaged in transit (460 checksum mismatch) is sent again", "[transfer][upload]") {
  http_server s;
  tus_options o;
  o.checksum_algorithms = "sha256";
  s.enable_tus(o);
  tus_fault f;
  f.corrupt = true;
  s.set_tus_fault(f);
  transfer_env env;
  const auto data = random_bytes(300'000, 9);
  const auto r = tus_upload_ok(s, env, data, "damaged");
  CHECK(s.tus_uploads().begin()->second == data);  // the damaged bytes never landed
  const auto patches = requests_of(s, "PATCH");
  REQUIRE(patches.size() == 6);  // five chunks, the first one twice
  CHECK(patches[0].status == 460);
  CHECK(patches[1].status == 204);
  CHECK(patches[1].headers.at("upload-offset") == "0");
  CHECK(patches[1].headers.at("upload-checksum") == patches[0].headers.at("upload-checksum"));
}

TEST_CASE("upload: 409 and 423 from the server: ask its offset again and go on, bounded", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(300'000, 10);
  tus_fault f;
  SECTION("409 Conflict (offset mismatch) once") {
    f.status = 409;
  }
  SECTION("423 Locked (a dead earlier request holds the lock) twice") {
    f.status = 423;
    f.count = 2;
  }
  s.set_tus_fault(f);
  const auto r = tus_upload_ok(s, env, data, "busy");
  CHECK(s.tus_uploads().begin()->second == data);
  CHECK(count(s, "PATCH") == 5u + static_cast<unsigned>(f.count));
  CHECK(count(s, "HEAD") == 1u + static_cast<unsigned>(f.count));  // each refusal: HEAD again first
  CHECK(r.attempts == 1u + static_cast<unsigned>(f.count));
}

TEST_CASE("upload: a lock that never goes away ends after the retry budget, with the status", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  tus_fault f;
  f.status = 423;
  f.count = 1'000'000;
  s.set_tus_fault(f);
  transfer_env env;
  write_file(env.dir / "src.bin", random_bytes(200'000, 11));
  auto o = env.options();
  o.retry.max_attempts = 3;
  tt::manager m(env.pool.get_executor(), o);
  const auto r = upload(m, upload_request(env, s.url("/files/"), "src.bin"), "locked");
  CHECK(r.outcome != tt::outcome::success);
  CHECK(r.message.find("423") != std::string::npos);
  CHECK(count(s, "PATCH") == 3);  // three attempts (max_attempts counts the first), no more
}

TEST_CASE("upload: an upload past its Upload-Expires is not resumed, a new one starts, reported",
          "[transfer][upload]") {
  http_server s;
  tus_options o;
  o.expires_in = -60s;  // every answer says the upload is already gone by now
  s.enable_tus(o);
  transfer_env env;
  const auto data = random_bytes(500'000, 12);
  const auto req = paused_upload(s, env, data, "expired", 64u << 10);
  const auto old_id = s.tus_uploads().begin()->first;
  // The new manager's requests are those on connections accepted from here on: the paused
  // run's last PATCH may reach the server's log only now, once the server has read its body.
  const auto connections_before = s.connections();
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, req, "expired");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.restarts == 1);
  std::size_t new_requests = 0;
  for (const auto& q : s.requests()) {
    if (q.connection <= connections_before) continue;
    ++new_requests;
    INFO(q.method << " " << q.target << " on connection " << q.connection);
    CHECK(q.target != "/files/" + old_id);  // never asked again
  }
  CHECK(new_requests >= 2);  // its creation and its PATCHes
  CHECK(count(s, "POST") == 2);
  for (auto& [id, bytes] : s.tus_uploads())
    if (id != old_id) CHECK(bytes == data);
}

namespace {
/// Fulfils a promise at the first transfer the manager settles.
struct settled_sink final : tether::net::metrics_sink {
  std::promise<void> done;
  std::atomic<bool> told{false};
  void count(std::string_view name, std::string_view, std::uint64_t) override {
    if (name == tether::net::metric::transfers_finished && !told.exchange(true)) done.set_value();
  }
  void gauge(std::string_view, std::string_view, double) override {}
  void observe(std::string_view, std::string_view, std::chrono::microseconds) override {}
};
}  // namespace

TEST_CASE("upload: cancelling a paused tus upload terminates it on the server", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto req = paused_upload(s, env, random_bytes(500'000, 13), "idle", 64u << 10);
  REQUIRE(s.tus_uploads().size() == 1);
  auto sink = std::make_shared<settled_sink>();
  auto settled = sink->done.get_future();
  auto o = env.options();
  o.metrics = sink;
  tt::manager m(env.pool.get_executor(), o);
  REQUIRE_FALSE(m.cancel("idle"));
  // The termination runs in the background; the transfer settles when the server has answered.
  // (Asked again before that, it would join the termination; after it, run again: a cancelled
  // transfer asked again is the caller's new decision.)
  REQUIRE(settled.wait_for(30s) == std::future_status::ready);
  CHECK(count(s, "DELETE") == 1);
  CHECK(s.tus_uploads().empty());
  const auto i = find_info(m, "idle");
  REQUIRE(i);
  CHECK(i->status == tt::status::cancelled);
}

TEST_CASE("upload: a source that is not the SHA-256 the caller gave is refused before any byte leaves",
          "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(200'000, 14);
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  SECTION("the wrong digest") {
    req.sha256 = tt::detail::sha256_hex("something else");
    const auto r = upload(m, req, "wrong");
    CHECK(r.outcome == tt::outcome::failed);
    CHECK(r.error == error::source_changed);
    CHECK(r.message.find(req.sha256) != std::string::npos);
    CHECK(s.requests().empty());
  }
  SECTION("the right one") {
    req.sha256 = tt::detail::sha256_hex(data);
    const auto r = upload(m, req, "right");
    REQUIRE(r.outcome == tt::outcome::success);
    CHECK(r.sha256 == req.sha256);
    CHECK(s.tus_uploads().begin()->second == data);
  }
}
