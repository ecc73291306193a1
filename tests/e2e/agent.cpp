// tether-agent as applications meet it, with the real binaries: transfers that go on while
// the application is dead, an agent killed and started again by its client, other users and
// other sessions kept out, bad requests answered, and many clients at once.
#include "fixtures/certs.hpp"
#include "fixtures/http_server.hpp"
#include "support/digests.hpp"
#include "support/process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using tether::test::child;
using tether::test::run_program;
using tether::test::slurp;

/// An agent process with its state directory and socket in a scratch directory.
struct agent_env {
  std::filesystem::path dir = tether::test::make_temp_dir("tether-agent-");
  std::filesystem::path state = dir / "state";
  std::filesystem::path sock = dir / "run" / "agent.sock";
  child agent;
  int runs = 0;

  ~agent_env() {
    stop_detached();
    if (agent.pid > 0) agent.kill_now();
    std::error_code ig;
    std::filesystem::remove_all(dir, ig);
  }
  std::filesystem::path agent_log() const { return dir / ("agent" + std::to_string(runs) + ".err"); }
  void start() {
    ++runs;
    agent = child::spawn({TETHER_AGENT_BIN, "--state", state.string(), "--socket", sock.string(), "-v"},
                         dir / "agent.out", agent_log());
  }
  /// SIGTERM: a clean stop, exit 0.
  void stop() {
    ::kill(agent.pid, SIGTERM);
    const int rc = agent.wait(30s);
    INFO("agent stderr: " << slurp(agent_log()));
    CHECK(rc == 0);
    agent.pid = -1;
  }
  /// Stops an agent a client started (not our child): its pid is in the state lock; waits for
  /// its end through a pidfd.
  void stop_detached() {
    const auto holder = slurp(state / "agent.lock");
    const auto pid = static_cast<pid_t>(std::strtol(holder.c_str(), nullptr, 10));
    if (pid <= 0 || (agent.pid > 0 && pid == agent.pid)) return;
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (::kill(pid, SIGTERM) != 0 || fd < 0) return;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 30'000);
    ::close(fd);
  }
  /// tether-transfer --agent SOCK --session SESSION ARGS... (with --no-start unless `may_start`).
  tether::test::ran cli(const std::string& session, std::vector<std::string> args, bool may_start = false,
                        const std::string& as_user = {}) const {
    std::vector<std::string> cmd;
    if (!as_user.empty()) cmd = {"/usr/bin/setpriv", "--reuid", as_user, "--regid", as_user, "--clear-groups"};
    for (const std::string& a : {std::string(TETHER_TRANSFER_BIN), std::string("--agent"), sock.string(), std::string("--session"), session})
      cmd.push_back(a);
    if (may_start) {
      cmd.push_back("--state");
      cmd.push_back(state.string());
    } else {
      cmd.push_back("--no-start");
    }
    cmd.insert(cmd.end(), args.begin(), args.end());
    const auto run_dir = dir / ("run-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(run_dir);
    auto r = run_program(cmd, run_dir, {}, 120s);
    return r;
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

json last_json_line(const std::string& out) {
  INFO("stdout: " << out);
  REQUIRE(!out.empty());
  auto end = out.find_last_not_of('\n');
  auto start = out.rfind('\n', end);
  return json::parse(out.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1)));
}

/// A raw client of the agent's socket: lines out, lines in, every read bounded.
struct raw_client {
  int fd = -1;
  std::string buf;
  explicit raw_client(const std::filesystem::path& sock) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~raw_client() { ::close(fd); }
  void send(const std::string& line) {
    std::size_t at = 0;
    while (at < line.size()) {
      const auto n = ::write(fd, line.data() + at, line.size() - at);
      if (n <= 0) return;  // the agent may close on us (an oversized line)
      at += static_cast<std::size_t>(n);
    }
  }
  /// The next line, or "" at the end of the stream.
  std::string line() {
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        auto l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      char tmp[4096];
      const auto n = ::read(fd, tmp, sizeof tmp);
      if (n <= 0) return {};
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }
  json call(const std::string& line_text) {
    send(line_text + "\n");
    const auto l = line();
    INFO("request: " << line_text);
    REQUIRE(!l.empty());
    return json::parse(l);
  }
};

int error_code_of(const json& j) { return j.contains("error") ? j["error"]["code"].get<int>() : 0; }

/// The most a TCP socket's send buffer grows to on this machine (tcp_wmem's maximum; 4 MiB,
/// Linux's default, when it cannot be read).
std::uint64_t send_buffer_max() {
  std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
  std::uint64_t min = 0, initial = 0, max = 0;
  if (f >> min >> initial >> max && max > 0) return max;
  return 4u << 20;
}

}  // namespace

TEST_CASE("tether-agent: the application dies, the agent finishes, the relaunched one gets the result once",
          "[agent][e2e]") {
  constexpr std::uint64_t size = 256ull << 20;
  tether::test::http_server s;
  s.add_content("/big", size);
  const auto expected = tether::test::content_sha256(1, size);
  agent_env env;
  env.start();
  const auto dest = env.dir / "big.bin";
  const std::vector<std::string> cmd = {TETHER_TRANSFER_BIN, "--agent", env.sock.string(), "--session", "app",
                                        "--no-start", "download", s.url("/big"), dest.string(), "--id", "big",
                                        "--sha256", expected};
  auto app = child::spawn(cmd, env.dir / "app.out", env.dir / "app.err");
  const bool moving = s.wait_for_body_bytes("/big", 32ull << 20, 60s);
  app.kill_now();  // the application dies while the agent downloads
  INFO("app stderr: " << slurp(env.dir / "app.err"));
  REQUIRE(moving);
  CHECK(slurp(env.dir / "app.out").empty());  // it never saw a result

  // Another session of the same user does not see it.
  auto other = env.cli("intruder", {"wait", "big"});
  CHECK(other.code == 1);

  // Relaunched with the same session: the result, once.
  auto r = env.cli("app", {"wait", "big"});
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  const auto j = last_json_line(r.out);
  CHECK(j["outcome"] == "success");
  CHECK(j["sha256"] == expected);
  CHECK(tether::test::file_sha256(dest) == expected);
  // One fetch, nothing started over: the agent fetches it in segments, and its first response
  // (which told the content's length and ETag) is abandoned after its header, so at most what
  // the sockets held of that body comes on top: the fixture's send buffer, which the kernel
  // grows while it is full (up to tcp_wmem's maximum, and the longer the client takes to close
  // it, as on a loaded machine), and our receive buffer and one read (2 MiB). Starting over
  // would fetch again the 32 MiB the application saw pass, and more.
  CHECK(s.body_bytes_sent("/big") <= size + send_buffer_max() + (2u << 20));

  auto again = env.cli("app", {"wait", "big"});
  CHECK(again.code == 1);  // acknowledged: gone
  CHECK(again.out.find("\"success\"") == std::string::npos);
  auto listed = env.cli("app", {"list"});
  CHECK(listed.code == 0);
  CHECK(listed.out.empty());
  env.stop();
}

TEST_CASE("tether-agent: killed mid-download, started again by its client, resumes to the exact bytes",
          "[agent][e2e]") {
  constexpr std::uint64_t size = 256ull << 20;
  tether::test::http_server s;
  s.add_content("/big", size);
  const auto expected = tether::test::content_sha256(1, size);
  agent_env env;
  env.start();
  const auto dest = env.dir / "big.bin";
  auto handed = env.cli("app", {"download", s.url("/big"), dest.string(), "--id", "big", "--sha256", expected, "--detach"});
  INFO("stderr: " << handed.err);
  REQUIRE(handed.code == 0);
  CHECK(handed.out == "big\n");
  REQUIRE(s.wait_for_body_bytes("/big", 96ull << 20, 60s));
  env.agent.kill_now();
  env.agent.pid = -1;
  CHECK(!std::filesystem::exists(dest));

  // No agent answers: the client starts one (the tether-agent beside it) on the same state.
  auto r = env.cli("app", {"wait", "big"}, /*may_start=*/true);
  INFO("wait stderr: " << r.err << "\nagent log: " << slurp(env.state / "agent.log"));
  REQUIRE(r.code == 0);
  const auto j = last_json_line(r.out);
  CHECK(j["outcome"] == "success");
  CHECK(tether::test::file_sha256(dest) == expected);
  const auto served = s.body_bytes_sent("/big");
  WARN("bytes served: " << served << " = " << double(served) / double(size) << "x the file");
  CHECK(double(served) <= 1.15 * double(size));
  bool resumed = false;
  for (const auto& q : s.requests())
    if (q.headers.count("range") && q.status == 206) resumed = true;
  CHECK(resumed);
}

TEST_CASE("tether-agent: another user is refused, sessions see only their own, secrets stay in", "[agent][e2e]") {
  tether::test::http_server s;
  s.add_content("/a", 100'000);
  agent_env env;
  env.start();
  const auto dest = env.dir / "a.bin";
  auto mine = env.cli("alice", {"download", s.url("/a"), dest.string(), "--id", "a", "--detach", "--header",
                                "Authorization: Bearer s3cr3t-t0ken"});
  REQUIRE(mine.code == 0);

  SECTION("another session of the same user: not listed, not waited for, its id not taken") {
    auto list_b = env.cli("bob", {"list"});
    CHECK(list_b.code == 0);
    CHECK(list_b.out.empty());
    CHECK(env.cli("bob", {"wait", "a"}).code == 1);
    auto steal = env.cli("bob", {"download", s.url("/a"), (env.dir / "b.bin").string(), "--id", "a"});
    CHECK(steal.code != 0);
    CHECK_THAT(steal.err, Catch::Contains("another session"));
    // The owner still gets its result; the secret never came back in any answer or log line.
    auto r = env.cli("alice", {"wait", "a"});
    CHECK(r.code == 0);
    for (const auto& text : {list_b.out, r.out, r.err, steal.err, slurp(env.agent_log())})
      CHECK(text.find("s3cr3t") == std::string::npos);
  }
  SECTION("the state files are the user's only") {
    struct stat st {};
    REQUIRE(::stat(env.state.c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
    REQUIRE(::stat((env.state / "agent.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
    REQUIRE(::stat(env.sock.parent_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
    CHECK(env.cli("alice", {"wait", "a"}).code == 0);
  }
  SECTION("another user, even with the socket opened to all, is refused by its uid, and refuses") {
    if (::geteuid() != 0 || !std::filesystem::exists("/usr/bin/setpriv")) {
      WARN("needs root and setpriv to run a client as another user: not checked here");
      return;
    }
    // Open the way to the socket so that only the agent's own check stands.
    for (auto p = env.sock.parent_path(); p.string().size() > 1; p = p.parent_path()) {
      ::chmod(p.c_str(), 0755);
      if (p == std::filesystem::temp_directory_path()) break;
    }
    ::chmod(env.sock.c_str(), 0666);
    auto r = env.cli("alice", {"list"}, false, "65534");  // nobody
    CHECK(r.code != 0);
    CHECK(r.out.empty());
    // Both ends check: the client will not talk to another user's agent, and the agent has
    // already turned the connection away by its uid.
    CHECK_THAT(r.err, Catch::Contains("runs as uid 0, not as this user"));
    // The agent takes connections in order: once alice's is answered, the other was judged.
    CHECK(env.cli("alice", {"wait", "a"}).code == 0);
    CHECK_THAT(slurp(env.agent_log()), Catch::Contains("refused a connection from uid 65534"));
  }
  env.stop();
}

TEST_CASE("tether-agent: malformed, oversized and out-of-order requests get JSON-RPC errors, and it serves on",
          "[agent][e2e]") {
  agent_env env;
  env.start();
  REQUIRE(env.cli("x", {"list"}).code == 0);  // up (the client waits for it with its backoff)
  {
    raw_client c(env.sock);
    struct row {
      std::string line;
      int code;
    };
    const std::vector<row> rows = {
        {"garbage", -32700},
        {"[]", -32600},
        {R"({"jsonrpc":"2.0","method":"list"})", -32600},
        {R"({"jsonrpc":"2.0","id":1,"method":"list"})", -32001},  // before attach
        {R"({"jsonrpc":"2.0","id":2,"method":"nope"})", -32601},
        {R"({"jsonrpc":"2.0","id":3,"method":"attach","params":{"session":"a b"}})", -32602},
        {R"({"jsonrpc":"2.0","id":4,"method":"attach","params":{"session":"raw"}})", 0},
        {R"({"jsonrpc":"2.0","id":5,"method":"attach","params":{"session":"other"}})", -32600},
        {R"({"jsonrpc":"2.0","id":6,"method":"download","params":{"id":"d","url":"http://127.0.0.1:1/","file":"rel"}})", -32602},
        {R"({"jsonrpc":"2.0","id":7,"method":"download","params":{"id":"d","url":"x","file":"/x","what":1}})", -32602},
        {R"({"jsonrpc":"2.0","id":8,"method":"events","params":{"after":"x"}})", -32602},
        {R"({"jsonrpc":"2.0","id":9,"method":"ack","params":{"id":"unknown"}})", -32002},
        {R"({"jsonrpc":"2.0","id":10,"method":"cancel","params":{"id":"unknown"}})", -32002},
        {R"({"jsonrpc":"2.0","id":11,"method":"list","params":{"x":1}})", -32602},
        {std::string(40, '[') + std::string(40, ']'), -32700},
        {R"({"jsonrpc":"2.0","id":12,"method":"events","params":{"after":0}})", 0},
    };
    for (const auto& r : rows) {
      const auto j = c.call(r.line);
      INFO(r.line << " -> " << j.dump());
      CHECK(error_code_of(j) == r.code);
      CHECK(j["jsonrpc"] == "2.0");
    }
    // A line past the limit (64 KiB) is answered, then the connection ends: it cannot resync.
    c.send(std::string(70'000, 'x') + "\n");
    const auto l = c.line();
    REQUIRE(!l.empty());
    CHECK(error_code_of(json::parse(l)) == -32006);
    CHECK(c.line().empty());
  }
  {
    // A client that sends half a line and goes: nothing blocks.
    raw_client c(env.sock);
    c.send(R"({"jsonrpc":"2.0","id":1,"meth)");
  }
  // The agent serves on.
  raw_client c(env.sock);
  CHECK(error_code_of(c.call(R"({"jsonrpc":"2.0","id":1,"method":"attach","params":{"session":"raw"}})")) == 0);
  CHECK(c.call(R"({"jsonrpc":"2.0","id":2,"method":"list"})")["result"].is_array());
  env.stop();
}

TEST_CASE("tether-agent: 4 application processes queue 100 transfers at once, and all finish exactly", "[agent][e2e]") {
  tether::test::http_server s;
  for (int i = 0; i < 100; ++i) s.add_content("/f" + std::to_string(i), 64'000 + static_cast<std::uint64_t>(i) * 997);
  agent_env env;
  env.start();
  REQUIRE(env.cli("load", {"list"}).code == 0);
  // 4 application processes, each handing 25 downloads to the agent at once and waiting for them.
  std::vector<child> apps;
  for (int k = 0; k < 4; ++k)
    apps.push_back(child::spawn({TETHER_AGENT_LOAD_CHILD_BIN, env.sock.string(), "load", s.url(""), std::to_string(k * 25),
                                 "25", env.dir.string()},
                                env.dir / ("app" + std::to_string(k) + ".out"), env.dir / ("app" + std::to_string(k) + ".err")));
  for (int k = 0; k < 4; ++k) {
    INFO("app " << k << ": " << slurp(env.dir / ("app" + std::to_string(k) + ".err")));
    CHECK(apps[static_cast<std::size_t>(k)].wait(120s) == 0);
    CHECK(slurp(env.dir / ("app" + std::to_string(k) + ".out")) == "25\n");
  }
  // Every file exact, every result taken once: nothing waits in the agent.
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    const auto id = "f" + std::to_string(i);
    if (slurp(env.dir / id) == s.content("/" + id)) ++ok;
  }
  CHECK(ok == 100);
  auto listed = env.cli("load", {"list"});
  CHECK(listed.code == 0);
  INFO("apps' stderr: " << slurp(env.dir / "app0.err") << slurp(env.dir / "app1.err") << slurp(env.dir / "app2.err")
                        << slurp(env.dir / "app3.err"));
  CHECK(listed.out.empty());
  auto again = env.cli("load", {"wait", "f7"});
  CHECK(again.code == 1);
  env.stop();
}

TEST_CASE("tether-agent: started by systemd socket activation, it serves the socket it is given", "[agent][e2e]") {
  // systemd-socket-activate listens, and at the first connection starts the agent with the
  // listening socket as fd 3 (LISTEN_FDS=1), as tether-agent.socket does.
  REQUIRE(std::filesystem::exists("/usr/bin/systemd-socket-activate"));
  tether::test::http_server s;
  s.add_content("/a", 300'000);
  agent_env env;
  std::filesystem::create_directories(env.sock.parent_path());
  ++env.runs;
  env.agent = child::spawn({"/usr/bin/systemd-socket-activate", "-l", env.sock.string(), TETHER_AGENT_BIN, "--state",
                            env.state.string(), "-v"},
                           env.dir / "agent.out", env.agent_log());
  auto r = env.cli("app", {"download", s.url("/a"), (env.dir / "a.bin").string(), "--id", "a"});
  INFO("stderr: " << r.err << "\nagent: " << slurp(env.agent_log()));
  REQUIRE(r.code == 0);
  CHECK(slurp(env.dir / "a.bin") == s.content("/a"));
  CHECK_THAT(slurp(env.agent_log()), Catch::Contains("listening on " + env.sock.string()));
  env.stop();
  CHECK(std::filesystem::exists(env.sock));  // systemd's socket, left for systemd
}

TEST_CASE("tether-agent: usage, and one agent per state directory and per socket", "[agent][e2e]") {
  agent_env env;
  auto none = run_program({TETHER_AGENT_BIN}, env.dir);
  CHECK(none.code == 1);
  CHECK_THAT(none.err, Catch::Contains("--state DIR is required"));
  auto help = run_program({TETHER_AGENT_BIN, "--help"}, env.dir);
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("usage: tether-agent --state DIR [--socket PATH]"));
  env.start();
  REQUIRE(env.cli("x", {"list"}).code == 0);
  // The same state: refused, naming the process that has it.
  auto second = run_program({TETHER_AGENT_BIN, "--state", env.state.string(), "--socket", (env.dir / "other.sock").string()},
                            env.dir);
  CHECK(second.code == 3);
  CHECK_THAT(second.err, Catch::Contains("in use by process " + std::to_string(env.agent.pid)));
  // The same socket, another state: refused, the first one untouched.
  auto third = run_program({TETHER_AGENT_BIN, "--state", (env.dir / "state2").string(), "--socket", env.sock.string()},
                           env.dir);
  CHECK(third.code == 3);
  CHECK_THAT(third.err, Catch::Contains("another agent listens on"));
  CHECK(env.cli("x", {"list"}).code == 0);
  env.stop();
  CHECK(!std::filesystem::exists(env.sock));  // its own socket file goes with it
}

TEST_CASE("tether-agent: the event stream numbers a transfer's events, and its result keeps its number until acked",
          "[agent][e2e]") {
  tether::test::http_server s;
  s.add_content("/e", 2'000'000);
  agent_env env;
  env.start();
  REQUIRE(env.cli("raw", {"list"}).code == 0);
  raw_client c(env.sock);
  const auto att = c.call(R"({"jsonrpc":"2.0","id":1,"method":"attach","params":{"session":"raw"}})");
  REQUIRE(att["result"]["cursor"].is_number_unsigned());
  auto cursor = att["result"]["cursor"].get<std::uint64_t>();
  const json add = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "download"},
                    {"params", {{"id", "e"}, {"url", s.url("/e")}, {"file", (env.dir / "e.bin").string()}}}};
  CHECK(c.call(add.dump())["result"]["created"] == true);
  CHECK(c.call(add.dump())["result"]["created"] == false);  // the same again: the same transfer
  std::vector<std::string> types;
  std::uint64_t result_seq = 0, last = cursor;
  for (int i = 0; i < 100 && result_seq == 0; ++i) {  // each call waits for the next event (bounded)
    const json poll = {{"jsonrpc", "2.0"}, {"id", 10 + i}, {"method", "events"}, {"params", {{"after", cursor}, {"wait_ms", 10'000}}}};
    const auto ans = c.call(poll.dump())["result"];
    CHECK(ans["gap"] == false);
    for (const auto& e : ans["events"]) {
      CHECK(e["id"] == "e");
      CHECK(e["seq"].get<std::uint64_t>() > last);  // numbers only grow
      last = e["seq"].get<std::uint64_t>();
      types.push_back(e["type"].get<std::string>());
      if (e["type"] == "result") {
        result_seq = last;
        CHECK(e["result"]["outcome"] == "success");
      }
    }
    cursor = ans["cursor"].get<std::uint64_t>();
  }
  REQUIRE(result_seq > 0);
  CHECK(types.front() == "added");
  const auto got = c.call(R"({"jsonrpc":"2.0","id":200,"method":"get","params":{"id":"e"}})")["result"];
  CHECK(got["result_seq"] == result_seq);
  CHECK(got["result"]["outcome"] == "success");
  CHECK(got.dump().find("headers") == std::string::npos);
  CHECK(error_code_of(c.call(R"({"jsonrpc":"2.0","id":201,"method":"ack","params":{"id":"e"}})")) == 0);
  CHECK(error_code_of(c.call(R"({"jsonrpc":"2.0","id":202,"method":"get","params":{"id":"e"}})")) == -32002);
  CHECK(slurp(env.dir / "e.bin") == s.content("/e"));
  env.stop();
}
