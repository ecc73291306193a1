// The promise of tether-transfer, tested on the real binary: kill it with SIGKILL at random
// moments during a 256 MiB download, start it again each time with the same command, and the
// file ends byte-identical, with the bytes the processes read staying within 1.15x the file size.
#include "fixtures/certs.hpp"
#include "fixtures/http_server.hpp"
#include "support/digests.hpp"
#include "support/process.hpp"
#include "support/socket_queues.hpp"

#include <tether/transfer/detail/file.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

using tether::test::child;
using tether::test::slurp;

}  // namespace

namespace {

/// Five SIGKILLs of `tether-transfer download` (with `extra` options) at random moments, then
/// a run to the end: the file exact, the bytes the processes read within 1.15x its size.
void survive_five_kills(const std::vector<std::string>& extra) {
  constexpr std::uint64_t size = 256ull << 20;
  tether::test::http_server s;
  s.add_content("/big", size);
  const std::filesystem::path dir = tether::test::make_temp_dir("tether-crash-");
  const auto state = dir / "state", dest = dir / "big.bin";
  std::filesystem::create_directories(state);

  // The expected digest, computed from the fixture's deterministic content.
  const auto expected = tether::test::content_sha256(1, size);

  const char* seed_env = std::getenv("TETHER_CRASH_SEED");
  const auto seed = seed_env ? std::strtoull(seed_env, nullptr, 10) : std::random_device{}();
  INFO("seed " << seed << " (set TETHER_CRASH_SEED to repeat)");
  std::mt19937_64 rng(seed);
  // Each kill lands after a random amount of new body bytes, between 1 and 40 MiB past what
  // the server had sent when that run started (so a run may die during its restore, its
  // request, or deep in the body).
  std::uniform_int_distribution<std::uint64_t> more(1ull << 20, 40ull << 20);

  // A kill loses what is not yet durable: at most max_unsynced_bytes and one read per
  // connection. The defaults (4 MiB chunks, 8 MiB unsynced) may lose ~10 MiB per kill on
  // loopback, where the network outruns the disk: more than 5 kills of a 256 MiB file allow
  // under 1.15x; 1 MiB chunks with at most 2 MiB unsynced bound the loss to ~3 MiB per kill, at
  // some throughput (see tests/bench/reliability.py).
  //
  // What the kernel holds when the process dies never reached it, and is not counted: each
  // kill stops the process first, then subtracts what sits in the socket queues of the
  // server's port (the client's receive buffers grow to tcp_rmem's maximum, MiBs per
  // connection, when a loaded machine schedules the process late) and what the server sends
  // after that. Both readings err towards counting more as read: the queues are read before
  // the server's byte count.
  std::vector<std::string> cmd = {TETHER_TRANSFER_BIN, "--state", state.string(), "download",
                                  s.url("/big"), dest.string(), "--id", "crash", "--sha256", expected,
                                  "--checkpoint-bytes", std::to_string(1u << 20),
                                  "--max-unsynced", std::to_string(2u << 20)};
  cmd.insert(cmd.end(), extra.begin(), extra.end());
  std::uint64_t read_by_killed = 0;  // bytes served to the killed runs that they read
  std::string kills;
  for (int k = 0; k < 5; ++k) {
    const auto start = s.body_bytes_sent("/big");
    const auto target = start + more(rng);
    auto c = child::spawn(cmd, dir / "out.txt", dir / ("err" + std::to_string(k) + ".txt"));
    const bool reached = s.wait_for_body_bytes("/big", target, 60s);
    c.stop();
    const auto queued = tether::test::kernel_queued_bytes(s.port());
    const auto at_stop = s.body_bytes_sent("/big");
    c.kill_now();
    const auto served_to_run = at_stop - start;
    read_by_killed += served_to_run - std::min(queued, served_to_run);
    kills += "kill " + std::to_string(k) + ": " + std::to_string(served_to_run) + " bytes served when stopped, " +
             std::to_string(queued) + " of them in kernel queues\n";
    INFO("kill " << k << " at " << at_stop << " bytes served; stderr: " << slurp(dir / ("err" + std::to_string(k) + ".txt")));
    REQUIRE(reached);
    CHECK(!std::filesystem::exists(dest));  // never a partial destination
  }
  const auto final_start = s.body_bytes_sent("/big");
  auto c = child::spawn(cmd, dir / "out.txt", dir / "err-final.txt");
  const int rc = c.wait(180s);
  INFO("stderr: " << slurp(dir / "err-final.txt"));
  REQUIRE(rc == 0);
  const auto out = slurp(dir / "out.txt");
  const auto line = nlohmann::json::parse(out);
  CHECK(line["outcome"] == "success");
  CHECK(line["sha256"] == expected);

  // The file, hashed independently of the binary's claim.
  const auto got = tether::test::file_sha256(dest);
  CHECK(std::filesystem::file_size(dest) == size);
  CHECK(got == expected);
  const auto served = s.body_bytes_sent("/big");
  const auto read_total = read_by_killed + (served - final_start);
  WARN("bytes read by the processes: " << read_total << " = " << double(read_total) / double(size) << "x the file; served: "
                                       << double(served) / double(size) << "x; requests: " << s.requests().size());
  INFO(kills);
  std::string requests;
  for (const auto& r : s.requests()) {
    const auto range = r.headers.count("range") ? r.headers.at("range") : std::string("(none)");
    requests += "GET " + range + " -> " + std::to_string(r.status) + ", " + std::to_string(r.body_bytes_sent) + " body bytes\n";
  }
  INFO(requests);
  CHECK(double(read_total) <= 1.15 * double(size));
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}

}  // namespace

TEST_CASE("tether-transfer survives SIGKILL at 5 random moments of a 256 MiB download", "[transfer][crash]") {
  survive_five_kills({"--connections", "1"});
}

// Four connections write four places of the file at once; each chunk is recorded only once
// synced, and after each kill every recorded chunk is read back and checked before the
// missing ones are fetched again.
TEST_CASE("tether-transfer survives SIGKILL at 5 random moments of a 256 MiB download over 4 connections",
          "[transfer][crash]") {
  survive_five_kills({"--connections", "4", "--connections-at-once"});
}

TEST_CASE("a process killed at each file operation of a download in turn, and a fresh one finishes it",
          "[transfer][crash]") {
  constexpr std::uint64_t size = 512u << 10;
  tether::test::http_server s;
  s.add_content("/f", size);
  const std::filesystem::path dir = tether::test::make_temp_dir("tether-crash-sweep-");
  const auto state = dir / "state", dest = dir / "f.bin";
  auto cmd = [&](int n) {
    return std::vector<std::string>{TETHER_CRASH_CHILD_BIN, dir.string(),  state.string(), s.url("/f"),
                                    dest.string(),          "sweep",       std::to_string(n)};
  };
  // A clean run counts the operations.
  auto first = child::spawn(cmd(0), dir / "out.txt", dir / "err.txt");
  REQUIRE(first.wait(60s) == 0);
  const int total = std::stoi(slurp(dir / "out.txt"));
  REQUIRE(total > 20);
  const std::string expected = s.content("/f");
  REQUIRE(slurp(dest) == expected);
  int killed = 0;
  for (int n = 1; n <= total; ++n) {
    INFO("killed at operation " << n << " of " << total);
    std::filesystem::remove_all(state);
    std::filesystem::remove(dest);
    const auto served_before = s.body_bytes_sent("/f");
    auto c = child::spawn(cmd(n), dir / "out.txt", dir / "err.txt");
    const int rc = c.wait(60s);
    INFO("stderr: " << slurp(dir / "err.txt"));
    CHECK((rc == -SIGKILL || rc == 0));
    if (rc == -SIGKILL) ++killed;
    // The next process, no crash: finishes from what was durable; nothing set aside.
    auto again = child::spawn(cmd(0), dir / "out.txt", dir / "err2.txt");
    INFO("stderr of the second run: " << slurp(dir / "err2.txt"));
    REQUIRE(again.wait(60s) == 0);
    CHECK(slurp(dest) == expected);
    for (auto& e : std::filesystem::directory_iterator(state))
      CHECK(e.path().filename().string().find(".corrupt") == std::string::npos);
    // One crash costs at most one max_unsynced_bytes window (128 KiB), one read and the
    // socket buffers (the fixture's 256 KiB send buffer, doubled by the kernel, and ours).
    CHECK(s.body_bytes_sent("/f") - served_before <= size + (128u << 10) + (256u << 10) + (1u << 20));
  }
  // The count varies a little from run to run (how many boundaries one background sync
  // covers depends on timing): a run that makes fewer operations than N ends by itself.
  CHECK(killed > total / 2);
  WARN("crash sweep: " << total << " file operations, " << killed << " runs killed at one of them, each finished by the next process");
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}

TEST_CASE("tether-transfer says what is wrong in the state directory, one line per problem", "[transfer][crash]") {
  const std::filesystem::path dir = tether::test::make_temp_dir("tether-cli-problems-");
  const auto state = dir / "state";
  std::filesystem::create_directories(state);
  { std::ofstream(state / "torn.json") << "{\"schema\": 1, \"id\": \"torn\", \"off"; }
  { std::ofstream(state / "junk.json") << "[]"; }
  auto c = child::spawn({TETHER_TRANSFER_BIN, "--state", state.string(), "list"}, dir / "out.txt", dir / "err.txt");
  CHECK(c.wait(30s) == 0);
  const auto err = slurp(dir / "err.txt");
  INFO(err);
  CHECK(err.find("tether-transfer: torn: damaged record (not valid JSON)") != std::string::npos);
  CHECK(err.find("tether-transfer: junk: damaged record (not a JSON object)") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 2);
  // list shows them too, as JSON lines with their problem.
  const auto out = slurp(dir / "out.txt");
  CHECK(out.find("\"problem\"") != std::string::npos);
  std::error_code ig;
  std::filesystem::remove_all(dir, ig);
}
