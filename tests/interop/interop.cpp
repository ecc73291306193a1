// Interop: ws::client against real servers nobody here wrote (Python websockets, Node ws),
// started by the test. The peer is chosen by the TETHER_INTEROP_PEER command (set by ctest).
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {

// A peer process: its stdout lines are collected; killed when the test ends.
class peer_process {
 public:
  explicit peer_process(const std::string& command) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      setpgid(0, 0);  // its own group, so the whole peer goes when we kill it
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      FILE* f = fdopen(fd, "r");
      char buf[4096];
      while (fgets(buf, sizeof buf, f)) {
        std::lock_guard lk(mu_);
        std::string line(buf);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        lines_.push_back(line);
        cv_.notify_all();
      }
      fclose(f);
    });
  }
  ~peer_process() {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    reader_.join();
  }
  // The first line starting with `prefix`, waiting up to `timeout`.
  std::string wait_line(const std::string& prefix, std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lk(mu_);
    std::string found;
    cv_.wait_for(lk, timeout, [&] {
      for (auto& l : lines_)
        if (l.rfind(prefix, 0) == 0) return found = l, true;
      return false;
    });
    return found;
  }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

std::string peer_command() {
  const char* c = std::getenv("TETHER_INTEROP_PEER");
  return c ? c : "";
}

std::string start(peer_process& p) {
  auto line = p.wait_line("port ");
  REQUIRE(!line.empty());
  return "ws://127.0.0.1:" + line.substr(5);
}

}  // namespace

TEST_CASE("interop: echo of text and binary up to 16 MiB", "[interop]") {
  peer_process peer(peer_command());
  const auto base = start(peer);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(base + "/echo");
    o.max_message_size = 32u << 20;
    o.outbox_max_bytes = 64u << 20;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{125}, std::size_t{126}, std::size_t{65535},
                             std::size_t{65536}, std::size_t{1} << 20, std::size_t{16} << 20}) {
      std::string blob(size, '\0');
      for (std::size_t i = 0; i < size; ++i) blob[i] = static_cast<char>((i * 131) & 0xff);
      const auto bin = ws::message::binary(blob);
      co_await c.async_send(bin, test::nothrow);
      auto m = co_await test::next_of<ws::message>(c);
      CHECK(m == bin);
      const auto txt = ws::message::text(std::string(size, 'a') + "é");
      co_await c.async_send(txt, test::nothrow);
      auto t = co_await test::next_of<ws::message>(c);
      CHECK(t == txt);
    }
    const ws::close_reason bye{4123, "client says bye"};
    co_await c.async_close(bye, test::nothrow);
  }(), 60s);
  CHECK(peer.wait_line("closed ") == "closed 4123 client says bye");
}

TEST_CASE("interop: the server's close code and reason", "[interop]") {
  peer_process peer(peer_command());
  const auto base = start(peer);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(base + "/close/4002/server%20done");
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    auto d = co_await test::next_of<ws::disconnected>(c);
    CHECK(d.code == 4002);
    CHECK((d.reason == "server done" || d.reason == "server%20done"));
    CHECK(!d.error);
  }());
}

TEST_CASE("interop: ping and pong", "[interop]") {
  peer_process peer(peer_command());
  const auto base = start(peer);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(base + "/echo");
    o.pong_events = true;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    co_await c.async_ping("interop-ping", test::nothrow);
    auto p = co_await test::next_of<ws::pong>(c);
    CHECK(p.payload == "interop-ping");
    co_await c.async_close(test::nothrow);
  }());
}

TEST_CASE("interop: subprotocol choice", "[interop]") {
  peer_process peer(peer_command());
  const auto base = start(peer);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(base + "/echo");
    o.subprotocols = {"chat.v1", "chat.v2"};
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    auto conn = co_await test::next_of<ws::connected>(c);
    CHECK((conn.subprotocol == "chat.v1" || conn.subprotocol == "chat.v2"));
    co_await c.async_close(test::nothrow);
  }());
}
