// Test helpers for tether::transfer: a temporary state directory, fast retry options, and
// blocking (bounded) calls into a manager.
#pragma once

#include "fixtures/certs.hpp"

#include <tether/transfer.hpp>

#include <boost/asio/thread_pool.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

namespace tether::test {

namespace tt = tether::transfer;
using namespace std::chrono_literals;

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
}

/// A scratch directory (removed at the end) with a state directory inside, and an executor
/// for completions.
struct transfer_env {
  std::filesystem::path dir = make_temp_dir("tether-transfer-");
  std::filesystem::path state = dir / "state";
  boost::asio::thread_pool pool{1};

  ~transfer_env() {
    pool.join();
    std::error_code ig;
    std::filesystem::remove_all(dir, ig);
  }

  /// Fast retries, 64 KiB checkpoints.
  tt::options options() const {
    tt::options o;
    o.state_dir = state;
    o.retry.initial = 10ms;
    o.retry.max = 100ms;
    o.retry.min = 1ms;
    o.retry.max_attempts = 8;
    o.checkpoint_bytes = 64u << 10;
    o.read_inactivity_timeout = 5s;
    return o;
  }
  tt::request download(const std::string& url, const std::string& name) const {
    tt::request r;
    r.url = url;
    r.file = dir / name;
    return r;
  }
};

/// Waits (bounded) for a result delivered to a callback.
inline tt::result wait_result(std::future<tt::result>& f, std::chrono::seconds limit = 30s) {
  REQUIRE(f.wait_for(limit) == std::future_status::ready);
  return f.get();
}

inline std::future<tt::result> start_download(tt::manager& m, const tt::request& req, const std::string& id) {
  auto p = std::make_shared<std::promise<tt::result>>();
  auto f = p->get_future();
  m.download(req, id, [p](tt::result r) { p->set_value(std::move(r)); });
  return f;
}
inline std::future<tt::result> start_upload(tt::manager& m, const tt::request& req, const std::string& id) {
  auto p = std::make_shared<std::promise<tt::result>>();
  auto f = p->get_future();
  m.upload(req, id, [p](tt::result r) { p->set_value(std::move(r)); });
  return f;
}
inline tt::result download(tt::manager& m, const tt::request& req, const std::string& id) {
  auto f = start_download(m, req, id);
  return wait_result(f);
}
inline tt::result upload(tt::manager& m, const tt::request& req, const std::string& id) {
  auto f = start_upload(m, req, id);
  return wait_result(f);
}

inline std::vector<tt::result> resume_all(tt::manager& m) {
  auto p = std::make_shared<std::promise<std::vector<tt::result>>>();
  auto f = p->get_future();
  m.resume_all([p](std::vector<tt::result> v) { p->set_value(std::move(v)); });
  REQUIRE(f.wait_for(30s) == std::future_status::ready);
  return f.get();
}

inline std::optional<tt::info> find_info(const tt::manager& m, const std::string& id) {
  for (auto& i : m.list())
    if (i.id == id) return i;
  return std::nullopt;
}

/// A manager whose transfers pause themselves once `bytes` are durable (from the progress
/// callback, on the manager's thread: deterministic, no sleeps). Once per manager.
struct pausing_manager {
  std::shared_ptr<tt::manager*> self = std::make_shared<tt::manager*>(nullptr);
  std::optional<tt::manager> m;
  pausing_manager(transfer_env& env, std::uint64_t bytes, tt::options o) {
    auto fired = std::make_shared<std::atomic<bool>>(false);
    o.progress_interval = 0ms;
    o.on_progress = [s = self, fired, bytes](const tt::progress& p) {
      if (p.bytes_durable >= bytes && !fired->exchange(true)) (*s)->pause(p.id);
    };
    m.emplace(env.pool.get_executor(), std::move(o));
    *self = &*m;
  }
  /// Runs `req` slowed down to 2 MiB/s until it pauses itself.
  void run_until_paused(tt::request req, const std::string& id, tt::kind k = tt::kind::download) {
    req.bandwidth_limit = 2u << 20;
    const auto r = k == tt::kind::download ? download(*m, req, id) : upload(*m, req, id);
    REQUIRE(r.error == tether::error::paused);
    CHECK(r.outcome == tt::outcome::retry_later);
  }
};

/// Runs the download `req` as `id` until `bytes` are durable, pauses it, and lets its manager
/// go, as a process that stops would: what it leaves on disk is what the next one finds.
inline void leave_paused(transfer_env& env, const tt::request& req, const std::string& id, std::uint64_t bytes) {
  pausing_manager pm(env, bytes, env.options());
  pm.run_until_paused(req, id);
}

}  // namespace tether::test
