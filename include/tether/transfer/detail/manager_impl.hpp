// tether/transfer/detail/manager_impl.hpp: the manager's state (its thread, its jobs and its
// queue) and the scheduler that runs each job in a run_context of its own.
#pragma once

#include <tether/transfer/detail/connection_pool.hpp>
#include <tether/transfer/detail/run_context.hpp>
#include <tether/transfer/detail/store.hpp>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <thread>

namespace tether::transfer::detail {

struct manager_impl : std::enable_shared_from_this<manager_impl> {
  options opts;
  asio::any_io_executor user_ex;
  asio::io_context ioc{1};
  asio::thread_pool syncer{1};  // fdatasync of partial data, off the network path
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::shared_ptr<net::detail::client_tls> tls;
  std::optional<detail::store> st;
  std::map<std::string, std::shared_ptr<job>> jobs;  // manager thread only
  std::deque<std::shared_ptr<job>> pending;
  std::size_t running = 0;
  bool stopping = false;
  rate_limiter global_pace;
  host_connections hosts;
  std::optional<connection_pool> pool;  // made with the options; closed before the io_context goes

  run_services services() { return {opts, ioc, *tls, *st, syncer, global_pace, hosts, *pool}; }

  // impl/scheduler.ipp
  /// The end of a transfer's run (or of a transfer stopped while not running): settle, store,
  /// report, free its slot.
  TETHER_DECL void finish(const std::shared_ptr<job>& j, result res);
  /// Queues a job (its record saved first) and starts what the concurrency limit allows.
  TETHER_DECL void enqueue(const std::shared_ptr<job>& j);
  TETHER_DECL void pump();
  TETHER_DECL asio::awaitable<void> run_job(std::shared_ptr<job> j);
  TETHER_DECL void deliver(job& j, const result& res);
  TETHER_DECL void add_waiter(job& j, result_handler h);
  /// Makes `id` this process's to run: takes its lock (unless held already) and reads its
  /// record again, as another process sharing the directory may have moved it on or removed
  /// it. The job (null when there is no record) is in `jobs` afterwards. Errors: state_locked
  /// (another process runs it; `why` names it) or the record's own (unreadable, damaged).
  TETHER_DECL error_code claim(const std::string& id, std::shared_ptr<job>& j, file& lock, std::string& why);

  /// Completes `h` with `value` through its executor (never inside the caller's stack).
  template <class Handler, class Value>
  static void post_result(Handler h, const asio::any_completion_executor& ex, Value value) {
    asio::dispatch(ex, [h = std::move(h), value = std::move(value)]() mutable { std::move(h)(std::move(value)); });
  }
  template <class Handler>
  asio::any_completion_executor tracked_executor(const Handler& h) const {
    return asio::prefer(asio::any_completion_executor(asio::get_associated_executor(h, user_ex)),
                        asio::execution::outstanding_work.tracked);
  }
};

}  // namespace tether::transfer::detail
