// tether/transfer/detail/run_context.hpp: what one transfer's run may touch (its job, the
// manager's settings and services; never the manager's tables), and the retry loop that drives
// a protocol's attempts through retry_fsm.
#pragma once

#include <tether/net/detail/tls_context.hpp>
#include <tether/transfer/detail/lifecycle.hpp>
#include <tether/transfer/detail/pacing.hpp>
#include <tether/transfer/detail/retry_fsm.hpp>
#include <tether/transfer/detail/store.hpp>
#include <tether/transfer/manager.hpp>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace tether::transfer::detail {

struct waiter {
  result_handler handler;
  asio::any_completion_executor work;  // the handler's executor, kept busy while the transfer runs
};

/// One transfer known to the manager: its record and who waits for it. Manager thread only.
struct job {
  record rec;
  std::vector<waiter> waiters;
  stop_kind stop = stop_kind::none;
  bool running = false, queued = false;
  file lock;  // the transfer's lock, held while this process has it queued or running
  std::function<void()> interrupt;  // aborts what the transfer is waiting for right now
  rate_limiter pace;
  rate_estimate rate;
  steady::time_point progress_at{};
};

/// Connections open per host:port for segmented downloads (manager thread only).
class connection_pool;

class host_connections {
 public:
  /// Takes one of `limit` places for `host` (false: all taken).
  bool take(const std::string& host, std::uint32_t limit) {
    auto& n = open_[host];
    if (n >= limit) return false;
    ++n;
    return true;
  }
  void give_back(const std::string& host) {
    auto it = open_.find(host);
    if (it != open_.end() && --it->second == 0) open_.erase(it);
  }

 private:
  std::map<std::string, std::uint32_t> open_;
};

/// The manager's services a run uses.
struct run_services {
  const options& opts;
  asio::io_context& ioc;
  net::detail::client_tls& tls;  // its system trust store loaded by the first TLS connection
  detail::store& store;
  asio::thread_pool& syncer;  // fdatasync and digests of partial data, off the network path
  rate_limiter& global_pace;
  host_connections& hosts;
  connection_pool& pool;
};

/// One run of one transfer, on the manager's thread.
class run_context {
 public:
  run_context(const run_services& s, std::shared_ptr<job> owned)
      : opts(s.opts), ioc(s.ioc), tls(s.tls), st(s.store), syncer(s.syncer), jp(std::move(owned)), j(*jp), r(jp->rec),
        hosts(s.hosts), pool(s.pool), global_pace_(s.global_pace) {}

  const options& opts;
  asio::io_context& ioc;
  net::detail::client_tls& tls;
  detail::store& st;
  asio::thread_pool& syncer;
  std::shared_ptr<job> jp;  // kept alive by the run
  job& j;
  record& r;
  host_connections& hosts;
  connection_pool& pool;  ///< idle connections and TLS sessions (detail/connection_pool.hpp)

  bool stopped() const noexcept { return j.stop != stop_kind::none; }
  /// Waits until `until` unless the transfer is stopped first (then false). `waker`, when
  /// given, points at the timer meanwhile, so that someone else can end the wait early.
  TETHER_DECL asio::awaitable<bool> wait_until(steady::time_point until, asio::steady_timer** waker = nullptr);
  /// Paces `n` new bytes against the per-transfer and global limits (false: stopped); never
  /// waits past the deadline.
  TETHER_DECL asio::awaitable<bool> pace(std::uint64_t n);
  /// Reserves `n` new bytes against the per-transfer and global limits: the moment they may
  /// go (never past the deadline), for runs that wait on timers of their own.
  TETHER_DECL steady::time_point pace_until(std::uint64_t n);
  /// The tighter of the bandwidth limits in bytes/s (0: none).
  std::uint64_t pace_limit() const noexcept { return tighter_limit(r.bandwidth_limit, opts.bandwidth_limit); }
  /// A progress report at a bounded rate (`force`: now).
  TETHER_DECL void report(std::uint64_t done, bool force = false);
  /// Tells options::on_retry that the attempt that ended as `end` is retried after `delay`.
  /// `n` more bytes moved over the network (the metrics' byte counter).
  TETHER_DECL void moved(std::uint64_t n) const;
  TETHER_DECL void notify_retry(const attempt_end& end, std::chrono::milliseconds delay);
  /// The whole-transfer deadline on the steady clock (max: none).
  TETHER_DECL steady::time_point deadline() const;
  /// A new connection, a kept-alive one used again, a TLS session resumed (the result's counts).
  void opened() noexcept { ++r.connections_opened; }
  void reused() noexcept { ++r.connections_reused; }
  void resumed() noexcept { ++r.tls_resumed; }
  error_code save(bool forward_only = false) { return st.save(r, forward_only); }
  std::filesystem::path part_path() const { return st.part_path(r.id); }
  void log(net::log_level l, const std::string& line) const { opts.log(l, "transfer " + r.id + ": " + line); }
  result make_result() const;

 private:
  rate_limiter& global_pace_;
};

/// The result fields a record fills (outcome failed, no error: the caller completes it).
TETHER_DECL result result_of(const record& r);
/// The metrics label of a transfer's kind: kind="download" or kind="upload".
TETHER_DECL std::string_view kind_label(kind k) noexcept;
inline result run_context::make_result() const { return result_of(r); }

/// Runs attempts until one completes (then `finalize()`), a failure is final, the retry budget
/// or the deadline is spent, or the transfer is stopped.
template <class Attempt, class Finalize>
asio::awaitable<result> retry_loop(run_context& cx, Attempt attempt, Finalize finalize) {
  retry_fsm fsm(cx.opts.retry, cx.opts.max_retry_after, cx.deadline(), std::random_device{}());
  for (;;) {
    if (cx.stopped()) co_return cx.make_result();
    auto res = cx.make_result();
    if (auto stop = fsm.before_attempt(steady::now())) {
      res.error = stop->error;
      res.message = stop->message;
      co_return res;
    }
    ++cx.r.attempts;
    auto end = co_await attempt();
    cx.j.interrupt = nullptr;
    if (cx.stopped()) co_return cx.make_result();
    const auto step = fsm.next(end, steady::now(), std::chrono::system_clock::now(), cx.r.attempts);
    if (step.kind == retry_step::finish) {
      auto done = finalize();
      done.http_status = end.status;
      if (done.outcome == net::outcome::success) cx.report(done.bytes_on_disk, true);
      co_return done;
    }
    if (!end.message.empty()) cx.log(net::log_level::info, end.message);
    if (step.kind == retry_step::stop) {
      res = cx.make_result();
      res.http_status = end.status;
      res.outcome = step.outcome;
      res.error = step.error;
      res.message = step.message;
      res.retry_after = end.retry_after;
      if (step.not_before)
        cx.r.earliest_start_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(step.not_before->time_since_epoch()).count();
      co_return res;
    }
    cx.notify_retry(end, step.delay);
    if (!co_await cx.wait_until(steady::now() + step.delay)) co_return cx.make_result();
  }
}

}  // namespace tether::transfer::detail
