// agent and agent_client in one process, as a program embeds them: completions on a thread
// pool, results across client restarts (once each), and a client that outlives its agent.
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/agent.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

namespace {

namespace tt = tether::transfer;
using namespace std::chrono_literals;
using boost::asio::use_future;

/// An agent on a thread of its own, stopped on that thread.
struct agent_host {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::optional<tt::agent> agent;
  std::thread thread;

  explicit agent_host(const tt::agent_options& o) {
    agent.emplace(io.get_executor(), o);
    thread = std::thread([this] { io.run(); });
  }
  ~agent_host() {
    std::promise<void> stopped;
    boost::asio::post(io, [&] {
      agent->stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    work.reset();
    thread.join();
    agent.reset();
  }
};

template <class T>
T ready(std::future<T>& f, std::chrono::seconds limit = 60s) {
  REQUIRE(f.wait_for(limit) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("agent_client: results once across client restarts, and a client that outlives its agent", "[agent][transfer]") {
  tether::test::http_server s;
  s.add_content("/one", 3'000'000);
  s.add_content("/two", 96ull << 20);
  tether::test::transfer_env env;
  tt::agent_options ao;
  ao.state_dir = env.dir / "agent";
  ao.socket_path = env.dir / "run" / "agent.sock";
  ao.manager.bandwidth_limit = 48u << 20;  // long enough to stop the agent in the middle of /two
  ao.manager.checkpoint_bytes = 1u << 20;
  boost::asio::thread_pool pool(2);  // joined last: every client is gone before

  auto client_options = [&] {
    tt::agent_client_options o;
    o.socket_path = ao.socket_path;
    o.session = "embedded";
    return o;
  };
  auto host = std::make_unique<agent_host>(ao);

  {
    // The application hands a transfer over and goes away before it ends.
    tt::agent_client a(pool.get_executor(), client_options());
    auto handed = a.submit(tt::kind::download, env.download(s.url("/one"), "one.bin"), "one", use_future);
    CHECK_NOTHROW(ready(handed));  // use_future: an error would be thrown
  }
  {
    // Relaunched: the result, once (resume_all waits for what still runs).
    tt::agent_client b(pool.get_executor(), client_options());
    auto all = b.resume_all(use_future);
    const auto results = ready(all);
    REQUIRE(results.size() == 1);
    CHECK(results[0].id == "one");
    CHECK(results[0].outcome == tt::outcome::success);
    CHECK(tether::test::read_file(env.dir / "one.bin") == s.content("/one"));
  }
  {
    // Acknowledged by the one that got it: nothing comes back.
    tt::agent_client c(pool.get_executor(), client_options());
    auto all = c.resume_all(use_future);
    CHECK(ready(all).empty());
    auto listed = c.list(use_future);
    CHECK(ready(listed).empty());
  }

  // The agent goes away in the middle of a download, and another takes over its state.
  std::atomic<int> progress_seen{0};
  auto o = client_options();
  o.on_progress = [&](const tt::progress& p) {
    if (p.id == "two") ++progress_seen;
  };
  std::optional<tt::agent_client> d;
  d.emplace(pool.get_executor(), o);
  auto two = d->download(env.download(s.url("/two"), "two.bin"), "two", use_future);
  REQUIRE(s.wait_for_body_bytes("/two", 16ull << 20, 60s));
  host.reset();  // stops cleanly: the transfer stays resumable
  CHECK(two.wait_for(0s) == std::future_status::timeout);
  host = std::make_unique<agent_host>(ao);  // the client finds it again with its backoff
  const auto r = ready(two, 90s);
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::success);
  CHECK(tether::test::read_file(env.dir / "two.bin") == s.content("/two"));
  CHECK(progress_seen.load() > 0);
  bool resumed = false;
  for (const auto& q : s.requests())
    if (q.target == "/two" && q.headers.count("range") && q.status == 206) resumed = true;
  CHECK(resumed);
  // Acknowledged once the completion ran: closing the client sends what it owes first, and
  // then has no work left (the pool's join returns once it is done).
  d.reset();
  pool.join();
  boost::asio::thread_pool other(1);
  tt::agent_client e(other.get_executor(), client_options());
  auto listed = e.list(use_future);
  CHECK(ready(listed).empty());
}  // e goes, then the agent, then the pools

TEST_CASE("agent_client: pause keeps the progress, resume continues it, cancel ends it with its result", "[agent][transfer]") {
  tether::test::http_server s;
  s.add_content("/p", 64ull << 20);
  s.add_content("/c", 64ull << 20);
  tether::test::transfer_env env;
  tt::agent_options ao;
  ao.state_dir = env.dir / "agent";
  ao.socket_path = env.dir / "run" / "agent.sock";
  ao.manager.bandwidth_limit = 32u << 20;
  ao.manager.checkpoint_bytes = 1u << 20;
  boost::asio::thread_pool pool(1);
  agent_host host(ao);
  tt::agent_client_options o;
  o.socket_path = ao.socket_path;
  o.session = "verbs";
  tt::agent_client c(pool.get_executor(), o);
  auto call = [&](auto&& start) {
    std::promise<tether::error_code> p;
    auto f = p.get_future();
    start([&p](tether::error_code ec) { p.set_value(ec); });
    return ready(f);
  };

  auto handed = c.submit(tt::kind::download, env.download(s.url("/p"), "p.bin"), "p", use_future);
  CHECK_NOTHROW(ready(handed));
  REQUIRE(s.wait_for_body_bytes("/p", 8ull << 20, 60s));
  CHECK(!call([&](auto h) { c.pause("p", h); }));
  auto listed = c.list(use_future);
  const auto infos = ready(listed);
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].status == tt::status::paused);
  CHECK(!infos[0].result);
  CHECK(!call([&](auto h) { c.resume("p", h); }));
  auto done = c.wait("p", use_future);
  const auto r = ready(done);
  INFO(r.message);
  CHECK(r.outcome == tt::outcome::success);
  CHECK(tether::test::read_file(env.dir / "p.bin") == s.content("/p"));
  CHECK(double(s.body_bytes_sent("/p")) < 1.2 * double(64ull << 20));  // continued, not started over

  auto handed_c = c.submit(tt::kind::download, env.download(s.url("/c"), "c.bin"), "c", use_future);
  CHECK_NOTHROW(ready(handed_c));
  REQUIRE(s.wait_for_body_bytes("/c", 4ull << 20, 60s));
  CHECK(!call([&](auto h) { c.cancel("c", h); }));
  auto cancelled = c.wait("c", use_future);
  const auto rc = ready(cancelled);
  CHECK(rc.error == tether::error::cancelled);
  CHECK(!std::filesystem::exists(env.dir / "c.bin"));

  CHECK(call([&](auto h) { c.cancel("nope", h); }) == tether::error::not_found);
  auto unknown = c.wait("nope", use_future);
  CHECK(ready(unknown).error == tether::error::not_found);
}
