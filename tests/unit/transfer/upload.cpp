// Uploads against the loopback fixture: plain PUT and tus 1.0 (creation, HEAD, PATCH,
// termination), resumption across processes, source changes.
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/file.hpp>

#include <atomic>
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

std::size_t count(const http_server& s, const std::string& method) {
  std::size_t n = 0;
  for (auto& r : s.requests()) n += r.method == method;
  return n;
}


}  // namespace

TEST_CASE("upload: plain PUT sends exactly the file", "[transfer][upload]") {
  http_server s;
  transfer_env env;
  const auto data = random_bytes(300'000, 1);
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, upload_request(env, s.url("/put/x"), "src.bin", tt::upload_protocol::put), "put");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.http_status == 201);
  CHECK(r.sha256 == tt::detail::sha256_hex(data));
  CHECK(s.put_bodies().at("/put/x") == data);
}

TEST_CASE("upload: tus creation, chunked PATCHes, the server's offset is the truth", "[transfer][upload]") {
  http_server s;
  s.enable_tus("/files/");
  transfer_env env;
  const auto data = random_bytes(300'000, 2);
  write_file(env.dir / "src.bin", data);
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = upload(m, upload_request(env, s.url("/files/"), "src.bin"), "tus");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
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
  write_file(env.dir / "src.bin", data);
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  {
    pausing_manager pm(env, 2 * (64u << 10), env.options());
    pm.run_until_paused(req, "changed", tt::kind::upload);
  }
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
  write_file(env.dir / "src.bin", data);
  auto req = upload_request(env, s.url("/files/"), "src.bin");
  {
    pausing_manager pm(env, 64u << 10, env.options());
    pm.run_until_paused(req, "gone", tt::kind::upload);
  }
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
