// Downloads against the loopback HTTP fixture: resumption, proof before trust, faults, limits.
#include "fixtures/http_server.hpp"
#include "fixtures/tls_terminator.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/net/detail/tls_context.hpp>
#include <tether/transfer/detail/file.hpp>

#include <atomic>

using namespace tether::test;
using tether::error;

namespace {

std::uint64_t served(const http_server& s, const std::string& path) { return s.body_bytes_sent(path); }

std::vector<http_request_record> gets(const http_server& s, const std::string& path) {
  std::vector<http_request_record> out;
  for (auto& r : s.requests())
    if (r.method == "GET" && r.target == path) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("download: whole file, verified, recorded", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  req.sha256 = tt::detail::sha256_hex(s.content("/f"));
  const auto r = download(m, req, "one");
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::success);
  CHECK(!r.error);
  CHECK(r.http_status == 200);
  CHECK(r.sha256 == req.sha256);
  CHECK(r.bytes_on_disk == 1'000'000);
  CHECK(r.bytes_received == 1'000'000);
  CHECK(r.bytes_expected == 1'000'000u);
  CHECK(r.attempts == 1);
  CHECK(read_file(req.file) == s.content("/f"));
  const auto req_log = gets(s, "/f");
  REQUIRE(req_log.size() == 1);
  CHECK(req_log[0].headers.at("accept-encoding") == "identity");
  CHECK(req_log[0].headers.count("range") == 0);
  auto info = find_info(m, "one");
  REQUIRE(info);
  CHECK(info->status == tt::status::succeeded);
  REQUIRE(info->result);
  CHECK(info->result->sha256 == req.sha256);
  // Nothing partial is left behind.
  for (auto& e : std::filesystem::directory_iterator(env.state)) CHECK(e.path().extension() != ".part");
}

TEST_CASE("download: resumes after a dropped connection with Range and If-Range", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  s.set_fault({.count = 1, .drop_after = 300'000});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "drop");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(r.attempts == 2);
  CHECK(r.restarts == 0);
  const auto log = gets(s, "/f");
  REQUIRE(log.size() == 2);
  CHECK(log[1].status == 206);
  const auto& range = log[1].headers.at("range");
  CHECK(range.rfind("bytes=", 0) == 0);
  const auto from = std::stoull(range.substr(6));
  CHECK(from > 0);
  CHECK(from <= 300'000);
  CHECK(log[1].headers.at("if-range") == "\"v1-1000000\"");  // the strong ETag
  // Nothing fetched twice beyond what the socket had in flight.
  CHECK(served(s, "/f") <= 1'000'000 + 300'000 - from);
}

TEST_CASE("download: a new version between attempts is fetched whole, never spliced", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 2'000'000);
  transfer_env env;
  pausing_manager pm(env, 256u << 10, env.options());
  auto& m = *pm.m;
  auto req = env.download(s.url("/f"), "f.bin");
  pm.run_until_paused(req, "v");
  CHECK(!std::filesystem::exists(req.file));
  CHECK(find_info(m, "v")->status == tt::status::paused);
  CHECK(find_info(m, "v")->bytes_durable >= (256u << 10));

  const auto old_content = s.content("/f");
  s.change_version("/f");
  const auto r = download(m, req, "v");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  const auto got = read_file(req.file);
  CHECK(got == s.content("/f"));
  CHECK(got.substr(0, 1000) != old_content.substr(0, 1000));
  CHECK(r.restarts == 1);
  const auto log = gets(s, "/f");
  CHECK(log.back().headers.count("if-range") == 1);
  CHECK(log.back().status == 200);  // If-Range failed: the whole new version
}

TEST_CASE("download: a resumed request answered wrongly is caught and the download starts over", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  pausing_manager pm(env, 128u << 10, env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  pm.run_until_paused(req, "wrong");
  const auto [name, fault] = GENERATE(table<std::string, http_fault>({
      {"a server that ignores Range (200, whole body)", http_fault{.count = 1, .ignore_range = true}},
      {"a 206 whose Content-Range starts elsewhere", http_fault{.count = 1, .wrong_content_range = true}},
      {"a 206 whose complete length differs", http_fault{.count = 1, .wrong_total = true}},
      {"a 206 with another strong ETag", http_fault{.count = 1, .other_etag = true}},
      {"a 416 for the resumed range", http_fault{.count = 1, .status = 416}},
  }));
  INFO(name);
  s.set_fault(fault);
  const auto r = download(*pm.m, req, "wrong");
  INFO(r.message);
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(r.restarts == 1);
}

TEST_CASE("download: an encoded body is never saved as the file", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 300'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto req = env.download(s.url("/f"), "f.bin");
  s.set_fault({.count = 1, .content_encoding = "gzip"});  // e.g. a server that forces gzip
  const auto r = download(m, req, "enc");
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::encoded_content);
  CHECK(r.message.find("Content-Encoding: gzip") != std::string::npos);
  CHECK(!std::filesystem::exists(req.file));
}

TEST_CASE("download: a resumed 206 with a Content-Encoding fails loudly", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  pausing_manager pm(env, 128u << 10, env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  pm.run_until_paused(req, "enc206");
  const auto durable = find_info(*pm.m, "enc206")->bytes_durable;
  REQUIRE(durable >= (128u << 10));
  s.set_fault({.count = 1, .content_encoding = "br"});
  const auto r = download(*pm.m, req, "enc206");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::encoded_content);
  CHECK(!std::filesystem::exists(req.file));
}

TEST_CASE("download: without any validator an interrupted download starts over", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 500'000, false, false);
  s.set_fault({.count = 1, .drop_after = 200'000});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "nv");
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  CHECK(r.restarts == 1);
  const auto log = gets(s, "/f");
  REQUIRE(log.size() == 2);
  CHECK(log[1].headers.count("range") == 0);

  SECTION("...unless the caller gave a SHA-256: then it resumes and verifies") {
    s.set_fault({.count = 1, .drop_after = 200'000});
    auto req2 = env.download(s.url("/f"), "g.bin");
    req2.sha256 = tt::detail::sha256_hex(s.content("/f"));
    const auto r2 = download(m, req2, "nv-sha");
    REQUIRE(r2.outcome == tt::outcome::success);
    CHECK(r2.restarts == 0);
    CHECK(read_file(req2.file) == s.content("/f"));
    CHECK(gets(s, "/f").back().headers.count("range") == 1);
  }
}

TEST_CASE("download: 503 with Retry-After is honoured", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 10'000);
  s.set_fault({.count = 1, .status = 503, .retry_after = "1"});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = download(m, env.download(s.url("/f"), "f.bin"), "busy");
  const auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.attempts == 2);
  CHECK(waited >= 900ms);  // the backoff alone would have retried after at most 10 ms
}

TEST_CASE("download: Retry-After beyond the limit ends as retry_later, resumable", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 10'000);
  s.set_fault({.count = 1, .status = 429, .retry_after = "3600"});
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "later");
  CHECK(r.outcome == tt::outcome::retry_later);
  CHECK(r.http_status == 429);
  REQUIRE(r.retry_after);
  CHECK(r.retry_after->count() == 3600);
  CHECK(!std::filesystem::exists(req.file));
  CHECK(find_info(m, "later")->status == tt::status::waiting);
  // The record was written before any byte moved, and it is on disk now.
  CHECK(std::filesystem::exists(env.state / "later.json"));
}

TEST_CASE("download: 404 is rejected and leaves no file", "[transfer][download]") {
  http_server s;
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto req = env.download(s.url("/missing"), "m.bin");
  const auto r = download(m, req, "404");
  CHECK(r.outcome == tt::outcome::rejected);
  CHECK(r.error == error::rejected);
  CHECK(r.http_status == 404);
  CHECK(r.attempts == 1);
  CHECK(!std::filesystem::exists(req.file));
  CHECK(find_info(m, "404")->status == tt::status::failed);
}

TEST_CASE("download: a body shorter than announced is not success", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 400'000);
  transfer_env env;
  auto o = env.options();
  SECTION("retried to a correct file") {
    s.set_fault({.count = 1, .short_by = 1000});
    tt::manager m(env.pool.get_executor(), o);
    const auto req = env.download(s.url("/f"), "f.bin");
    const auto r = download(m, req, "short");
    REQUIRE(r.outcome == tt::outcome::success);
    CHECK(r.attempts == 2);
    CHECK(read_file(req.file) == s.content("/f"));
  }
  SECTION("and when it never ends well, failed with short_body") {
    s.set_fault({.count = 100, .short_by = 1000});
    o.retry.max_attempts = 3;
    tt::manager m(env.pool.get_executor(), o);
    const auto req = env.download(s.url("/f"), "f.bin");
    const auto r = download(m, req, "short");
    CHECK(r.outcome == tt::outcome::failed);
    CHECK(r.error == error::short_body);
    CHECK(!std::filesystem::exists(req.file));
  }
}

TEST_CASE("download: SHA-256 mismatch fails and leaves nothing", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 300'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  req.sha256 = std::string(64, '0');
  const auto r = download(m, req, "sha");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::integrity_mismatch);
  CHECK(r.message.find(tt::detail::sha256_hex(s.content("/f"))) != std::string::npos);
  CHECK(!std::filesystem::exists(req.file));
  for (auto& e : std::filesystem::directory_iterator(env.state)) CHECK(e.path().extension() != ".part");
}

TEST_CASE("download: redirects are followed, bounded, and credentials stay with their origin", "[transfer][download]") {
  http_server s;
  s.add_content("/real", 50'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  SECTION("same origin keeps the header; the final URL is reported") {
    s.add_redirect("/a", "/b");
    s.add_redirect("/b", "/real", 307);
    auto req = env.download(s.url("/a"), "f.bin");
    req.headers = {{"Authorization", "Bearer secret-token"}};
    const auto r = download(m, req, "redir");
    REQUIRE(r.outcome == tt::outcome::success);
    CHECK(r.final_url == s.url("/real"));
    CHECK(read_file(req.file) == s.content("/real"));
    CHECK(gets(s, "/real").at(0).headers.at("authorization") == "Bearer secret-token");
  }
  SECTION("another origin does not get the Authorization header") {
    s.add_redirect("/x", "http://localhost:" + std::to_string(s.port()) + "/real");
    auto req = env.download(s.url("/x"), "f.bin");
    req.headers = {{"Authorization", "Bearer secret-token"}};
    const auto r = download(m, req, "cross");
    REQUIRE(r.outcome == tt::outcome::success);
    CHECK(gets(s, "/real").at(0).headers.count("authorization") == 0);
  }
  SECTION("a loop ends with too_many_redirects") {
    s.add_redirect("/l1", "/l2");
    s.add_redirect("/l2", "/l1");
    const auto r = download(m, env.download(s.url("/l1"), "f.bin"), "loop");
    CHECK(r.outcome == tt::outcome::failed);
    CHECK(r.error == error::too_many_redirects);
  }
}

TEST_CASE("download: no bytes for the inactivity timeout abandons the connection and resumes",
          "[transfer][download]") {
  http_server s;
  s.add_content("/f", 200'000);
  s.set_fault({.count = 1, .stall = 3000ms});
  transfer_env env;
  auto o = env.options();
  o.read_inactivity_timeout = 200ms;
  tt::manager m(env.pool.get_executor(), o);
  const auto req = env.download(s.url("/f"), "f.bin");
  const auto r = download(m, req, "stall");
  REQUIRE(r.outcome == tt::outcome::success);
  CHECK(r.attempts == 2);
  CHECK(read_file(req.file) == s.content("/f"));
}

TEST_CASE("download: the resource deadline ends a transfer that cannot finish", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 200'000);
  s.set_fault({.count = 1000, .stall = 5000ms});
  transfer_env env;
  auto o = env.options();
  o.resource_deadline = std::chrono::seconds{1};
  tt::manager m(env.pool.get_executor(), o);
  const auto r = download(m, env.download(s.url("/f"), "f.bin"), "deadline");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::deadline_exceeded);
}

TEST_CASE("download: content larger than the free space fails before writing", "[transfer][download]") {
  http_server s;
  s.add_content("/huge", 1ull << 52);  // 4 PiB, announced only
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  const auto r = download(m, env.download(s.url("/huge"), "h.bin"), "huge");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::insufficient_space);
  CHECK(served(s, "/huge") < (64u << 20));  // what the socket buffers took before the close
  for (auto& e : std::filesystem::directory_iterator(env.state)) CHECK(e.path().extension() != ".part");
}

TEST_CASE("download: cancel stops, deletes partial data and tells the waiter", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 2'000'000);
  transfer_env env;
  auto o = env.options();
  o.progress_interval = 0ms;
  auto mp = std::make_shared<tt::manager*>(nullptr);
  auto fired = std::make_shared<std::atomic<bool>>(false);
  o.on_progress = [mp, fired](const tt::progress& p) {
    if (p.bytes_durable > 0 && !fired->exchange(true)) CHECK(!(*mp)->cancel(p.id));
  };
  tt::manager m(env.pool.get_executor(), o);
  *mp = &m;
  auto req = env.download(s.url("/f"), "f.bin");
  req.bandwidth_limit = 4u << 20;
  const auto r = download(m, req, "c");
  CHECK(r.error == error::cancelled);
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(find_info(m, "c")->status == tt::status::cancelled);
  CHECK(!std::filesystem::exists(req.file));
  for (auto& e : std::filesystem::directory_iterator(env.state)) CHECK(e.path().extension() != ".part");
  CHECK(m.cancel("nobody") == error::not_found);
}

TEST_CASE("download: 50 at once in one process, all correct", "[transfer][download]") {
  http_server s;
  transfer_env env;
  auto o = env.options();
  o.max_concurrent = 8;
  tt::manager m(env.pool.get_executor(), o);
  std::vector<std::future<tt::result>> futures;
  for (int i = 0; i < 50; ++i) {
    const auto path = "/f" + std::to_string(i);
    s.add_content(path, 100'000 + static_cast<std::uint64_t>(i) * 1'000);
    futures.push_back(start_download(m, env.download(s.url(path), "f" + std::to_string(i)), "id" + std::to_string(i)));
  }
  for (int i = 0; i < 50; ++i) {
    const auto r = wait_result(futures[static_cast<std::size_t>(i)], 60s);
    INFO(i << ": " << r.message);
    CHECK(r.outcome == tt::outcome::success);
    CHECK(read_file(env.dir / ("f" + std::to_string(i))) == s.content("/f" + std::to_string(i)));
  }
  CHECK(m.list().size() == 50);
}

TEST_CASE("download: bad requests are refused with a clear error", "[transfer][download]") {
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  CHECK(download(m, env.download("not a url", "f"), "a").error == error::invalid_url);
  CHECK(download(m, env.download("ftp://127.0.0.1/x", "f"), "b").error == error::unsupported_scheme);
  CHECK(download(m, env.download("http://127.0.0.1:1/x", "no/such/dir/f"), "c").error == error::invalid_argument);
  auto req = env.download("http://127.0.0.1:1/x", "f");
  req.sha256 = "abc";
  CHECK(download(m, req, "d").error == error::invalid_argument);
  CHECK(download(m, env.download("http://127.0.0.1:1/x", "f"), "").error == error::invalid_argument);
  CHECK(m.list().empty());  // nothing was recorded for any of them
}

TEST_CASE("download: a second call with a running id joins it, one transfer, two results", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1'000'000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  req.bandwidth_limit = 8u << 20;  // still running when the second call arrives
  auto first = start_download(m, req, "join");
  auto second = start_download(m, req, "join");
  const auto a = wait_result(first), b = wait_result(second);
  CHECK(a.outcome == tt::outcome::success);
  CHECK(b.outcome == tt::outcome::success);
  CHECK(gets(s, "/f").size() == 1);
  CHECK(read_file(req.file) == s.content("/f"));
}

TEST_CASE("download: a destination on another file system is copied, synced and renamed", "[transfer][download]") {
  const std::filesystem::path shm = "/dev/shm";
  std::error_code ec;
  if (!std::filesystem::is_directory(shm, ec)) {
    WARN("no /dev/shm here; skipped");
    return;
  }
  http_server s;
  s.add_content("/f", 700'000);
  transfer_env env;
  const auto other = std::filesystem::path(make_temp_dir("/dev/shm/tether-dest-"));
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = env.download(s.url("/f"), "unused");
  req.file = other / "f.bin";
  const auto r = download(m, req, "xdev");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(read_file(req.file) == s.content("/f"));
  for (auto& e : std::filesystem::directory_iterator(env.state)) CHECK(e.path().extension() != ".part");
  std::size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(other)) files += e.is_regular_file();
  CHECK(files == 1);  // no temporary left beside it
  std::filesystem::remove_all(other, ec);
}

TEST_CASE("download: an earliest start time is kept", "[transfer][download]") {
  http_server s;
  s.add_content("/f", 1000);
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());
  auto req = env.download(s.url("/f"), "f.bin");
  const auto t0 = std::chrono::system_clock::now();
  req.earliest_start = t0 + 500ms;
  const auto r = download(m, req, "later");
  CHECK(r.outcome == tt::outcome::success);
  CHECK(std::chrono::system_clock::now() - t0 >= 450ms);
}

TEST_CASE("download: the system trust store is read by the first https connection, not before, and trusted there",
          "[transfer][download][tls]") {
  const auto dir = make_temp_dir("tether-store-");
  const auto files = make_test_certificates(dir, {"localhost"}, {"127.0.0.1"});
  // The system store, as OpenSSL finds it: here, the test CA alone (this test runs in a process
  // of its own).
  REQUIRE(::setenv("SSL_CERT_FILE", files.ca_file.c_str(), 1) == 0);
  REQUIRE(::setenv("SSL_CERT_DIR", (dir + "/none").c_str(), 1) == 0);
  auto tls = tether::net::detail::client_tls::make(tether::net::tls_options{}).value();
  auto* store = SSL_CTX_get_cert_store(tls->context().native_handle());
  CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) == 0);
  CHECK_FALSE(tls->ready());
  CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) == 1);
  CHECK_FALSE(tls->ready());  // once
  CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(store)) == 1);

  http_server s;
  s.add_content("/f", 100'000);
  tls_terminator front(files.cert_file, files.key_file, s.port());
  transfer_env env;
  tt::manager m(env.pool.get_executor(), env.options());  // no CA file: the system store only
  const auto r = download(m, env.download(front.url("/f"), "f.bin"), "system-store");
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::success);
  ::unsetenv("SSL_CERT_FILE");
  ::unsetenv("SSL_CERT_DIR");
}

TEST_CASE("download: https with pins, the right pin passes, a wrong one is pin_mismatch naming the chain, never retried", "[transfer][download][pin]") {
  const auto dir = make_temp_dir("tether-pin-");
  const auto files = make_test_certificates(dir, {"localhost"}, {"127.0.0.1"});
  const auto other = make_test_certificates(dir + "/other", {"localhost"}, {});
  http_server s;
  s.add_content("/f", 200'000);
  tls_terminator front(files.cert_file, files.key_file, s.port());
  transfer_env env;
  auto o = env.options();
  o.tls.ca_file = files.ca_file;
  o.tls.pinned_public_keys = {tether::net::public_key_pin_of_pem_file(other.cert_file).value(),
                              tether::net::public_key_pin_of_pem_file(files.ca_file).value()};
  {
    tt::manager m(env.pool.get_executor(), o);
    const auto r = download(m, env.download(front.url("/f"), "ok.bin"), "pinned");
    INFO(r.message);
    CHECK(r.outcome == tt::outcome::success);
  }
  o.tls.pinned_public_keys = {tether::net::public_key_pin_of_pem_file(other.cert_file).value()};
  tt::manager m(env.pool.get_executor(), o);
  const auto r = download(m, env.download(front.url("/f"), "bad.bin"), "mispinned");
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::pin_mismatch);
  CHECK(r.attempts == 1);
  CHECK(r.message.find(tether::net::public_key_pin_of_pem_file(files.cert_file).value()) != std::string::npos);
  CHECK(r.message.find(tether::net::public_key_pin_of_pem_file(files.ca_file).value()) != std::string::npos);
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}
