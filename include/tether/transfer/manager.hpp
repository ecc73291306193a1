// tether/transfer/manager.hpp: background transfers whose state lives on disk, so that after a
// crash or restart the same id continues the work instead of starting over.
#pragma once

#include <tether/transfer/types.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>

#include <memory>
#include <vector>

namespace tether::transfer {

namespace asio = boost::asio;

namespace detail {
struct manager_impl;
using result_handler = asio::any_completion_handler<void(result)>;
using results_handler = asio::any_completion_handler<void(std::vector<result>)>;
TETHER_DECL std::shared_ptr<manager_impl> open_manager(asio::any_io_executor ex, options opts);
TETHER_DECL void start_transfer(const std::shared_ptr<manager_impl>& m, kind k, request r,
                                std::string id, result_handler h);
TETHER_DECL void start_resume_all(const std::shared_ptr<manager_impl>& m, results_handler h);
TETHER_DECL std::vector<info> list(manager_impl& m);
TETHER_DECL error_code cancel(manager_impl& m, const std::string& id);
TETHER_DECL error_code pause(manager_impl& m, const std::string& id);
TETHER_DECL error_code remove(manager_impl& m, const std::string& id);
TETHER_DECL std::size_t prune(manager_impl& m, std::chrono::system_clock::duration older_than);
TETHER_DECL void shutdown(manager_impl& m);
TETHER_DECL asio::any_io_executor get_executor(const manager_impl& m) noexcept;
}  // namespace detail

/** The transfer manager.

    It runs its network and disk work on a thread of its own; completions go to the handler's
    associated executor (in a coroutine: the coroutine's), else to the executor given here.

    State: one JSON record per transfer in `options::state_dir` (file name from the id, made
    safe), written crash-safely (temp, fsync, rename, directory fsync) and existing before the
    first byte moves; partial data beside it (`.part`). A checkpoint records an offset only once
    the data up to it is synced, with a SHA-256 per checkpoint chunk; on reattach the partial
    file is cut back to the checkpoint and its chunks are re-verified before anything is
    appended. Several processes may share a state directory: each transfer is run by one of
    them at a time (a lock file per transfer, `<id>.lock`); asking for an id that another
    process runs fails with `state_locked`, naming that process. A record is read again when
    its id is asked for, so another process's progress is never undone. Records are validated
    when read (URLs parsed, offsets, digests and sizes checked). A record that cannot be read
    (an open or read error) is left exactly as it is with its partial data, reported by list(),
    and read again when its id is asked for. A record that reads but does not decode or
    validate is set aside with its partial data (renamed `*.json.corrupt` and `*.part.corrupt`,
    never deleted) and the reason written beside them (`*.json.corrupt.reason`), so every later
    manager reports the same id and reason in list(); prune() removes them by age. The other
    transfers go on.

    Results: success, rejected (4xx other than 408/425/429), retry_later (the server asked for
    more time than `max_retry_after`, or retries of a 429/5xx ran out: resumable later, with the
    Retry-After when given) and failed. A finished transfer keeps its record (and result) until
    remove(). Calling download() or upload() with its id again returns the stored result while
    it still holds: a succeeded upload, or a succeeded download whose file is still the one it
    produced (size, modification time, inode); a download whose file is gone or changed is
    fetched again, and a failed or cancelled transfer runs again (a failure keeps its durable
    data, so the new run continues it; disk failures end a call instead of being retried
    against the network). Results nobody took (the process died first) come back from
    resume_all(), except cancellations: a cancel is the caller's own decision and is never
    reported as a failure. resume_all() leaves alone the transfers another process runs.

    Thread safety: every member may be called from any thread.
*/
class manager {
 public:
  using executor_type = asio::any_io_executor;

  /// Opens (or creates) the state directory and loads its records. Throws
  /// boost::system::system_error naming the directory: `invalid_argument` for bad options, or
  /// the file system's error.
  manager(executor_type ex, options opts) : impl_(detail::open_manager(std::move(ex), std::move(opts))) {}
  /// Stops running transfers (their records stay resumable) and joins the manager's thread.
  ~manager() {
    if (impl_) detail::shutdown(*impl_);
  }
  manager(const manager&) = delete;
  manager& operator=(const manager&) = delete;
  manager(manager&&) noexcept = default;
  manager& operator=(manager&&) noexcept = delete;

  executor_type get_executor() const noexcept { return detail::get_executor(*impl_); }

  /// Downloads `req.url` to `req.file` under `id` (letters, digits and `._-` recommended; any
  /// text works). An existing id reattaches: a running transfer is joined, an unfinished one
  /// resumed, a finished one answers with its stored result. Completion: `void(result)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(result)) Token = asio::deferred_t>
  auto download(request req, std::string id, Token&& token = {}) {
    return start(kind::download, std::move(req), std::move(id), std::forward<Token>(token));
  }
  /// Uploads the file `req.file` to `req.url` (tus 1.0, or one PUT/POST). Same rules.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(result)) Token = asio::deferred_t>
  auto upload(request req, std::string id, Token&& token = {}) {
    return start(kind::upload, std::move(req), std::move(id), std::forward<Token>(token));
  }
  /// Reattaches every unfinished transfer (not paused ones) and completes with all their
  /// results, plus the results of finished transfers not yet delivered. Completion:
  /// `void(std::vector<result>)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(std::vector<result>)) Token = asio::deferred_t>
  auto resume_all(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::vector<result>)>(
        [impl = impl_](auto h) { detail::start_resume_all(impl, std::move(h)); }, token);
  }

  /// Every known transfer, including damaged records (with `problem`), sorted by id.
  std::vector<info> list() const { return detail::list(*impl_); }
  /// Stops a transfer for good: its partial data is deleted, its waiters get `cancelled`.
  /// `not_found` for an unknown id, `state_locked` when another process runs it.
  error_code cancel(const std::string& id) { return detail::cancel(*impl_, id); }
  /// Stops a running transfer, keeping its progress; its waiters get `paused`. download()
  /// with the id continues it.
  error_code pause(const std::string& id) { return detail::pause(*impl_, id); }
  /// Forgets a transfer (cancelling it if running): record and partial data are deleted.
  error_code remove(const std::string& id) { return detail::remove(*impl_, id); }
  /// Deletes finished, failed and cancelled records not updated for `older_than`, set-aside
  /// damaged records as old, and stray partial or temporary files. Returns how many files went.
  std::size_t prune(std::chrono::system_clock::duration older_than) { return detail::prune(*impl_, older_than); }

 private:
  template <class Token>
  auto start(kind k, request req, std::string id, Token&& token) {
    return asio::async_initiate<Token, void(result)>(
        [impl = impl_, k](auto h, request r, std::string i) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::start_transfer(impl, k, std::move(r), std::move(i), std::move(h));
        },
        token, std::move(req), std::move(id));
  }
  std::shared_ptr<detail::manager_impl> impl_;
};

}  // namespace tether::transfer
