// tether-agent: runs transfers for the applications of its user while they are not running.
// `tether-agent --help` is the manual; the contract is in DESIGN.md.
#include <tether/transfer.hpp>
#include <tether/version.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

namespace {

constexpr const char* help_text = R"(usage: tether-agent --state DIR [--socket PATH]

Runs downloads and uploads for the applications of this user (tether-transfer --agent,
or tether::transfer::agent_client), so that they go on while those are not running.
Serves until SIGTERM or SIGINT, then stops cleanly: running transfers stay resumable
and continue when the agent starts again.

  --state DIR     required. The agent's records (created 0700): transfers/ holds one
                  record per transfer and its partial data, agent.json which session
                  owns which transfer. One agent per directory.
  --socket PATH   the Unix socket to listen on (default $XDG_RUNTIME_DIR/tether/agent.sock,
                  else /tmp/tether-UID/agent.sock); its directory is created 0700, the
                  socket is 0600, and connections of other users are refused.
                  Under systemd socket activation (LISTEN_FDS=1) the socket passed is used.
  -v, --verbose   log every transfer's start, retries and end on stderr
  -h, --help      print this help and exit 0
  --version       print the version and exit 0

Exit status: 0 after a clean stop; 1 bad usage; 3 could not start (the message says why:
another agent runs in DIR or listens on PATH, a directory or socket that cannot be made).
)";

int usage_error(const std::string& why) {
  std::cerr << "tether-agent: " << why << "\nTry 'tether-agent --help' for more information.\n";
  return 1;
}

// systemd's socket activation: one listening socket at fd 3, meant for this process.
int activated_socket() {
  // Before any thread exists: the environment is ours to read and change.
  const char* fds = std::getenv("LISTEN_FDS");  // NOLINT(concurrency-mt-unsafe)
  const char* pid = std::getenv("LISTEN_PID");  // NOLINT(concurrency-mt-unsafe)
  if (!fds || !pid || std::string(fds) != "1" || std::to_string(::getpid()) != pid) return -1;
  for (const char* name : {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}) ::unsetenv(name);  // NOLINT(concurrency-mt-unsafe)
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  namespace tt = tether::transfer;
  tt::agent_options opts;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--state" || a == "--socket") {
      if (i + 1 >= argc) return usage_error(a + " needs a value");
      (a == "--state" ? opts.state_dir : opts.socket_path) = argv[++i];
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << help_text;
      return 0;
    } else if (a == "--version") {
      std::cout << "tether-agent " TETHER_VERSION_STRING "\n";
      return 0;
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (opts.state_dir.empty()) return usage_error("--state DIR is required");
  opts.listen_fd = activated_socket();
  opts.log.min_level = verbose ? tether::net::log_level::info : tether::net::log_level::warn;
  opts.log.sink = [](tether::net::log_level, std::string_view line) { std::cerr << line << std::endl; };

  boost::asio::io_context io;
  std::optional<tt::agent> agent;
  try {
    agent.emplace(io.get_executor(), opts);
  } catch (const std::exception& e) {
    std::cerr << "tether-agent: " << e.what() << "\n";
    return 3;
  }
  std::cerr << "tether-agent: listening on " << agent->socket_path().string() << std::endl;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const tether::error_code& ec, int) {
    if (ec) return;
    agent->stop();
    io.stop();
  });
  io.run();
  agent.reset();
  return 0;
}
