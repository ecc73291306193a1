// Network change (Linux netlink): when the network comes back, a pending backoff wait is cut
// short. Run in a fresh network namespace of a child process (needs root and iproute2; the
// test says so and is skipped elsewhere).
#include "fixtures/ws_server.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {
// The scenario, in the child. Exit codes: 0 pass, 77 skip, others fail.
int scenario() {
  if (unshare(CLONE_NEWNET) != 0) return 77;  // not allowed here
  // lo is down in a new namespace: nothing on 127.0.0.1 can be reached.
  asio::io_context ioc;
  auto o = test::fast_options("ws://127.0.0.1:45678/");
  o.watch_network = true;
  o.reconnect.backoff.initial = 60s;
  o.reconnect.backoff.max = 60s;
  o.reconnect.backoff.min = 30s;  // every wait is long: only a network event can cut it short
  ws::client c(ioc.get_executor(), o);
  c.async_run(asio::detached);
  int result = 3;
  std::unique_ptr<test::ws_server> server;
  const auto t0 = std::chrono::steady_clock::now();
  std::function<void()> pull = [&] {
    c.async_next_event([&](error_code ec, ws::event ev) {
      if (ec) return;
      if (std::holds_alternative<ws::reconnecting>(ev) && !server) {
        // Now waiting 30+ s. Bring the network up, start the server, then add an address:
        // the netlink events must end the wait.
        if (std::system("ip link set lo up") != 0) {
          result = 77;
          c.close();
          return;
        }
        test::ws_server_options so;
        so.port = 45678;
        server = std::make_unique<test::ws_server>(so);
        if (std::system("ip addr add 127.0.0.2/8 dev lo") != 0) result = 4;
      }
      if (std::holds_alternative<ws::connected>(ev)) {
        result = std::chrono::steady_clock::now() - t0 < 20s ? 0 : 5;
        c.close();
        return;
      }
      pull();
    });
  };
  pull();
  ioc.run_for(40s);
  return result;
}
}  // namespace

TEST_CASE("network: a network change cuts the backoff wait short", "[ws][network]") {
  if (geteuid() != 0 || std::system("command -v ip >/dev/null 2>&1") != 0) {
    WARN("needs root and iproute2 (network namespaces); skipped");
    return;
  }
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(scenario());
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    WARN("network namespaces are not available here; skipped");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);
}
