// tether-transfer as a user meets it: stderr during retries and progress, the JSON result
// line, hints, file modes and exit codes, against the in-process HTTP server on loopback.
#include "fixtures/certs.hpp"
#include "fixtures/http_server.hpp"
#include "support/process.hpp"

#include <tether/transfer/detail/file.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using tether::test::http_server;
using tether::test::run_program;

struct fixture {
  std::filesystem::path dir = tether::test::make_temp_dir("tether-cli-transfer-");
  std::filesystem::path state = dir / "state";

  tether::test::ran run(std::vector<std::string> args) const {
    std::vector<std::string> cmd{TETHER_TRANSFER_BIN, "--state", state.string()};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = run_program(cmd, dir, {}, std::chrono::seconds{60});
    INFO("stderr: " << r.err << "\nstdout: " << r.out);
    return r;
  }
};

json result_line(const tether::test::ran& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(!r.out.empty());
  return json::parse(r.out.substr(0, r.out.find('\n')));
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (auto nl = s.find('\n'); nl != std::string::npos; nl = s.find('\n', at)) {
    out.push_back(s.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

std::uint16_t dead_port() {
  http_server s;
  return s.port();  // closed when s goes
}

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("tether-transfer: one line per retry, and --max-attempts N makes N attempts", "[cli][transfer]") {
  fixture f;
  const auto url = "http://127.0.0.1:" + std::to_string(dead_port()) + "/x";
  SECTION("three attempts: two retry lines, each with attempt, cause and delay") {
    const auto r = f.run({"download", url, (f.dir / "x").string(), "--max-attempts", "3"});
    CHECK(r.code == 3);
    const auto j = result_line(r);
    CHECK(j["attempts"] == 3);
    CHECK(j["outcome"] == "failed");
    CHECK(r.err.find("attempt 1 failed: ") != std::string::npos);
    CHECK(r.err.find("attempt 2 failed: ") != std::string::npos);
    CHECK(r.err.find("attempt 3 failed: ") == std::string::npos);  // the last one ends the call instead
    CHECK(r.err.find("Connection refused; retrying in ") != std::string::npos);
    CHECK(r.err.find("gave up after 3 attempts") != std::string::npos);
  }
  SECTION("one attempt: no retry") {
    const auto r = f.run({"download", url, (f.dir / "x").string(), "--max-attempts", "1"});
    CHECK(r.code == 3);
    CHECK(result_line(r)["attempts"] == 1);
    CHECK(r.err.find("retrying in") == std::string::npos);
  }
}

TEST_CASE("tether-transfer: progress on a non-terminal ends at 100% and never shows an unknown rate", "[cli][transfer]") {
  http_server s;
  s.add_content("/f", 6u << 20);
  fixture f;
  const auto r = f.run({"download", s.url("/f"), (f.dir / "f").string(), "--bandwidth", std::to_string(2u << 20)});
  REQUIRE(r.code == 0);
  std::vector<std::string> progress;
  for (const auto& l : lines_of(r.err))
    if (l.find("MiB") != std::string::npos) progress.push_back(l);
  INFO("stderr: " << r.err);
  REQUIRE(!progress.empty());
  CHECK(progress.back().find("100.0%") != std::string::npos);
  CHECK(progress.back().find("6.0 MiB") != std::string::npos);
  CHECK(progress.size() >= 2);  // ~3 s at 2 MiB/s: at least one line on the way, at 2 s
  for (const auto& l : progress) {
    CHECK(l.find(" 0.0 MiB/s") == std::string::npos);
    CHECK(l.find("ETA 0s") == std::string::npos);
  }
}

TEST_CASE("tether-transfer: tus against a server that does not speak it suggests --protocol put", "[cli][transfer]") {
  http_server s;  // no tus endpoint
  fixture f;
  std::ofstream(f.dir / "src.bin") << std::string(1000, 'u');
  SECTION("the POST is refused with 404") {
    s.set_fault({.count = 100, .status = 404});
    const auto r = f.run({"upload", s.url("/up"), (f.dir / "src.bin").string()});
    CHECK(r.code == 2);
    CHECK(r.err.find("404") != std::string::npos);
    CHECK(r.err.find("does not seem to speak tus") != std::string::npos);
    CHECK(r.err.find("--protocol put") != std::string::npos);
  }
  SECTION("the POST is taken as a plain upload (201, no upload URL)") {
    const auto r = f.run({"upload", s.url("/up"), (f.dir / "src.bin").string()});
    CHECK(r.code == 3);
    CHECK(r.err.find("does not seem to speak tus") != std::string::npos);
    CHECK(r.err.find("--protocol put") != std::string::npos);
  }
}

TEST_CASE("tether-transfer: uploads report bytes sent and acknowledged", "[cli][transfer]") {
  http_server s;
  s.set_fault({.count = 100, .status = 413});
  fixture f;
  std::ofstream(f.dir / "src.bin") << std::string(300'000, 'p');
  const auto r = f.run({"upload", s.url("/up"), (f.dir / "src.bin").string(), "--protocol", "put"});
  CHECK(r.code == 2);
  const auto j = result_line(r);
  CHECK(j["http_status"] == 413);
  CHECK(j["bytes_acknowledged"] == 0);
  CHECK(j.contains("bytes_sent"));
  CHECK(!j.contains("bytes_received"));
  CHECK(!j.contains("bytes_on_disk"));
}

TEST_CASE("tether-transfer: Accept-Encoding for a download is refused before any request", "[cli][transfer]") {
  http_server s;
  s.add_content("/f", 1000);
  fixture f;
  const auto r = f.run({"download", s.url("/f"), (f.dir / "f").string(), "--header", "Accept-Encoding: gzip"});
  CHECK(r.code == 1);
  CHECK(r.err.find("Accept-Encoding: gzip") != std::string::npos);
  CHECK(r.err.find("identity") != std::string::npos);
  CHECK(s.requests().empty());
  CHECK(!std::filesystem::exists(f.dir / "f"));
}

TEST_CASE("tether-transfer: downloaded files get 0666 under the umask, the state directory stays private",
          "[cli][transfer]") {
  http_server s;
  s.add_content("/f", 1000);
  for (const unsigned mask : {022u, 002u, 077u}) {
    INFO("umask " << mask);
    fixture f;
    const auto old = ::umask(static_cast<mode_t>(mask));  // inherited by the child
    const auto r = f.run({"download", s.url("/f"), (f.dir / "f").string()});
    ::umask(old);
    REQUIRE(r.code == 0);
    CHECK(mode_of(f.dir / "f") == (0666u & ~mask));
    CHECK(mode_of(f.state) == 0700u);
  }
}

TEST_CASE("tether-transfer: a 500 that persists fails with its status, while 429 stays retry_later", "[cli][transfer]") {
  http_server s;
  s.add_content("/f", 1000);
  fixture f;
  SECTION("500") {
    s.set_fault({.count = 100, .status = 500});
    const auto r = f.run({"download", s.url("/f"), (f.dir / "f").string(), "--max-attempts", "2"});
    CHECK(r.code == 3);
    const auto j = result_line(r);
    CHECK(j["outcome"] == "failed");
    CHECK(j["http_status"] == 500);
    CHECK(j["message"].get<std::string>().find("500") != std::string::npos);
    CHECK(j["error"]["text"].get<std::string>().find("asked to retry later") == std::string::npos);
  }
  SECTION("429 with Retry-After") {
    s.set_fault({.count = 100, .status = 429, .retry_after = "0"});
    const auto r = f.run({"download", s.url("/f"), (f.dir / "f").string(), "--max-attempts", "2"});
    CHECK(r.code == 3);
    const auto j = result_line(r);
    CHECK(j["outcome"] == "retry_later");
    CHECK(j["http_status"] == 429);
  }
}

TEST_CASE("tether-transfer: records and results carry only what applies, and --report-sha256", "[cli][transfer]") {
  http_server s;
  s.add_content("/f", 70'000);
  fixture f;
  auto r = f.run({"download", s.url("/f"), (f.dir / "f").string(), "--id", "plain"});
  REQUIRE(r.code == 0);
  CHECK(!result_line(r).contains("sha256"));
  r = f.run({"download", s.url("/f"), (f.dir / "g").string(), "--id", "hashed", "--report-sha256"});
  REQUIRE(r.code == 0);
  CHECK(result_line(r)["sha256"] == tether::transfer::detail::sha256_hex(s.content("/f")));
  for (const auto& e : std::filesystem::directory_iterator(f.state)) {
    if (e.path().extension() != ".json") continue;
    const auto rec = json::parse(tether::test::slurp(e.path()));
    INFO(e.path());
    CHECK(!rec.contains("protocol"));  // downloads have none
    CHECK(!rec.contains("sha256_expected"));
  }
}

TEST_CASE("tether-transfer: usage", "[cli][transfer]") {
  fixture f;
  SECTION("--help on stdout with every option, defaults, where state lives, exit codes") {
    const auto r = f.run({"--help"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    for (const char* s : {"download URL DEST", "upload URL SRC", "resume", "list", "cancel ID", "--state DIR",
                          "--sha256", "--report-sha256", "--protocol", "--header", "--ca", "--insecure",
                          "--max-attempts", "default 9", "--bandwidth", "--chunk-size", "--checkpoint-bytes",
                          "--max-unsynced", "--recv-buffer", "WHERE STATE LIVES", "EXIT STATUS", "--version"}) {
      INFO(s);
      CHECK(r.out.find(s) != std::string::npos);
    }
  }
  SECTION("--version") {
    const auto r = f.run({"--version"});
    CHECK(r.code == 0);
    CHECK(r.out.rfind("tether-transfer ", 0) == 0);
  }
  SECTION("a bad value names the option and the value, exit 1") {
    const auto r = f.run({"--max-attempts", "many", "list"});
    CHECK(r.code == 1);
    CHECK(r.err.find("--max-attempts 'many'") != std::string::npos);
  }
  SECTION("an unknown command, exit 1") {
    const auto r = f.run({"fetch"});
    CHECK(r.code == 1);
    CHECK(r.err.find("unknown command 'fetch'") != std::string::npos);
  }
}
