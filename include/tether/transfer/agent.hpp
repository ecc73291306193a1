// tether/transfer/agent.hpp: transfers that go on while the application is not running. The
// agent (tether-agent, or `agent` below in a program of your own) hosts a transfer::manager
// behind a Unix-domain socket of its user; applications hand it transfers with agent_client
// and, relaunched, reattach by their session name to get every result they have not
// acknowledged.
#pragma once

#include <tether/transfer/types.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tether::transfer {

namespace asio = boost::asio;

/// `$XDG_RUNTIME_DIR/tether/agent.sock`, else `/tmp/tether-<uid>/agent.sock`.
TETHER_DECL std::filesystem::path default_agent_socket();
/// `$XDG_STATE_HOME/tether/agent`, else `$HOME/.local/state/tether/agent`.
TETHER_DECL std::filesystem::path default_agent_state();

struct agent_options {
  /// The agent's directory (created 0700): the manager's records in `transfers/`, the sessions'
  /// book in `agent.json`, and `agent.lock` (one agent per directory). Required.
  std::filesystem::path state_dir;
  /// Where to listen (default: default_agent_socket()). Its directory is created 0700 when
  /// missing; the socket is 0600, and every connection's peer uid (SO_PEERCRED) must be ours.
  std::filesystem::path socket_path;
  /// An already listening Unix socket to serve instead (systemd socket activation); -1: none.
  int listen_fd = -1;
  /// The hosted manager's options (its state_dir is set by the agent).
  options manager;
  /// Bounds, with their defaults: clients connected at once; bytes of one request line;
  /// requests of one connection answered at once (more wait to be read); transfers kept;
  /// sessions; events queued per session (the oldest go first; a client that missed some is
  /// told so and reads the state); the longest wait of an `events` call.
  std::size_t max_connections = 64;
  std::size_t max_request_bytes = 64u << 10;
  std::size_t max_requests_in_flight = 16;
  std::size_t max_transfers = 10'000;
  std::size_t max_sessions = 256;
  std::size_t max_events_per_session = 1024;
  std::chrono::milliseconds max_event_wait{60'000};
  net::logger log;
};

namespace detail {
struct agent_impl;
TETHER_DECL std::shared_ptr<agent_impl> open_agent(asio::any_io_executor ex, agent_options opts);
TETHER_DECL void stop_agent(agent_impl& a);
TETHER_DECL std::filesystem::path agent_socket(const agent_impl& a);
}  // namespace detail

/** The agent: serves the protocol of detail/agent_protocol.hpp on `ex` (a single-threaded
    executor, e.g. an io_context run by one thread), hosting a manager with its own thread.

    Results are exactly-once per acknowledgement: a finished transfer keeps its result in its
    record until its session calls ack; a session that reattaches gets every result it has not
    acknowledged. After a restart (or a SIGKILL) the agent resumes every unfinished, unpaused
    transfer it owns. Requests carry headers (e.g. Authorization): they are kept in the agent's
    files (mode 0600) and never answered, listed or logged. */
class agent {
 public:
  /// Takes the directory's lock, loads its state, binds and listens. Throws
  /// boost::system::system_error naming what failed (`state_locked`: another agent runs there).
  agent(asio::any_io_executor ex, agent_options opts) : impl_(detail::open_agent(std::move(ex), std::move(opts))) {}
  /// Stops as stop() does.
  ~agent() {
    if (impl_) detail::stop_agent(*impl_);
  }
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;
  /// Stops listening, closes the connections and stops the manager (transfers stay resumable);
  /// the socket file is removed. Call on the agent's executor.
  void stop() { detail::stop_agent(*impl_); }
  std::filesystem::path socket_path() const { return detail::agent_socket(*impl_); }

 private:
  std::shared_ptr<detail::agent_impl> impl_;
};

struct agent_client_options {
  /// The agent's socket (default: default_agent_socket()).
  std::filesystem::path socket_path;
  /// Whose transfers these are: results wait for this name until it acknowledges them.
  std::string session = "default";
  /// When no agent answers: start this program (`tether-agent --state start_state --socket
  /// socket_path`) and wait for it, with a lock so that clients starting at once start one.
  /// Empty: never start one.
  std::filesystem::path start_program;
  std::filesystem::path start_state;  ///< default: default_agent_state()
  /// Reconnecting to a lost agent: attempts spaced by this backoff; calls wait meanwhile and
  /// fail with `retries_exhausted` when it gives up. Default: 100 ms doubling to 2 s, 30 s in all.
  net::backoff_policy reconnect{.initial = std::chrono::milliseconds{100},
                                .max = std::chrono::milliseconds{2'000},
                                .multiplier = 2.0,
                                .min = std::chrono::milliseconds{20},
                                .max_attempts = 0,
                                .max_elapsed = std::chrono::milliseconds{30'000}};
  /// Progress of this session's transfers (on the client's executor); must not block.
  std::function<void(const progress&)> on_progress;
  std::function<void(const retry_notice&)> on_retry;
  /// How long closing the client may wait for the agent to take the acknowledgements it owes
  /// (each is a durable write in the agent); past it, the unacknowledged results come again to
  /// the next client of the session.
  std::chrono::milliseconds close_timeout{10'000};
  /// Calls waiting for an answer at once (more fail with `busy`).
  std::size_t max_pending = 1024;
  net::logger log;
};

namespace detail {
struct agent_client_impl;
using agent_result_handler = asio::any_completion_handler<void(result)>;
using agent_results_handler = asio::any_completion_handler<void(std::vector<result>)>;
using agent_list_handler = asio::any_completion_handler<void(error_code, std::vector<info>)>;
using agent_done_handler = asio::any_completion_handler<void(error_code)>;
enum class agent_verb { cancel, pause, resume, remove };
TETHER_DECL std::shared_ptr<agent_client_impl> open_agent_client(asio::any_io_executor ex, agent_client_options o);
TETHER_DECL void close_agent_client(agent_client_impl& c);
TETHER_DECL void agent_submit(const std::shared_ptr<agent_client_impl>& c, kind k, request r, std::string id,
                              agent_done_handler h);
TETHER_DECL void agent_run(const std::shared_ptr<agent_client_impl>& c, kind k, request r, std::string id,
                           agent_result_handler h);
TETHER_DECL void agent_wait(const std::shared_ptr<agent_client_impl>& c, std::string id, agent_result_handler h);
TETHER_DECL void agent_resume_all(const std::shared_ptr<agent_client_impl>& c, agent_results_handler h);
TETHER_DECL void agent_list(const std::shared_ptr<agent_client_impl>& c, agent_list_handler h);
TETHER_DECL void agent_verb_call(const std::shared_ptr<agent_client_impl>& c, agent_verb v, std::string id,
                                 agent_done_handler h);
}  // namespace detail

/** An application's handle on the agent: the manager's operations, run by the agent.

    download()/upload() hand the transfer over and complete with its result; the transfer goes on
    if this process dies, and its result waits for the session. A result handed to a completion
    is acknowledged once the handler has run (closing the client sends the acknowledgements it owes
    first, for at most `close_timeout`), so a relaunched application gets again exactly the
    results it never saw (a crash inside the handler gets it again: at least once per process,
    exactly once per acknowledgement). A lost connection is made again with `reconnect`'s
    backoff (and the agent started again when start_program is set); events missed meanwhile
    are made up from the agent's state, so no result is lost.

    Completions run on the client's executor. The client's members may be called from any
    thread. */
class agent_client {
 public:
  agent_client(asio::any_io_executor ex, agent_client_options o)
      : impl_(detail::open_agent_client(std::move(ex), std::move(o))) {}
  ~agent_client() {
    if (impl_) detail::close_agent_client(*impl_);
  }
  agent_client(const agent_client&) = delete;
  agent_client& operator=(const agent_client&) = delete;

  /// Hands a download to the agent and completes with its result. Completion: `void(result)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(result)) Token = asio::deferred_t>
  auto download(request req, std::string id, Token&& token = {}) {
    return run(kind::download, std::move(req), std::move(id), std::forward<Token>(token));
  }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(result)) Token = asio::deferred_t>
  auto upload(request req, std::string id, Token&& token = {}) {
    return run(kind::upload, std::move(req), std::move(id), std::forward<Token>(token));
  }
  /// Hands a transfer over without waiting for it (relative paths are made absolute here).
  /// Completion: `void(error_code)` once the agent has it.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto submit(kind k, request req, std::string id, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_, k](auto h, request r, std::string i) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::agent_submit(impl, k, std::move(r), std::move(i), std::move(h));
        },
        token, std::move(req), std::move(id));
  }
  /// The result of this session's transfer `id` once it ends (at once if it has); `not_found`
  /// in the result for an id the session does not have. Completion: `void(result)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(result)) Token = asio::deferred_t>
  auto wait(std::string id, Token&& token = {}) {
    return asio::async_initiate<Token, void(result)>(
        [impl = impl_](auto h, std::string i) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::agent_wait(impl, std::move(i), std::move(h));
        },
        token, std::move(id));
  }
  /// Every result of this session not yet acknowledged, plus those of its unfinished, unpaused
  /// transfers once they end. Completion: `void(std::vector<result>)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(std::vector<result>)) Token = asio::deferred_t>
  auto resume_all(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::vector<result>)>(
        [impl = impl_](auto h) { detail::agent_resume_all(impl, std::move(h)); }, token);
  }
  /// This session's transfers. Completion: `void(error_code, std::vector<info>)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code, std::vector<info>)) Token = asio::deferred_t>
  auto list(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, std::vector<info>)>(
        [impl = impl_](auto h) { detail::agent_list(impl, std::move(h)); }, token);
  }
  /// cancel, pause, resume (a paused transfer) and remove, as the manager's. Completion:
  /// `void(error_code)` (`not_found` for an id the session does not have).
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto cancel(std::string id, Token&& token = {}) { return verb(detail::agent_verb::cancel, std::move(id), std::forward<Token>(token)); }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto pause(std::string id, Token&& token = {}) { return verb(detail::agent_verb::pause, std::move(id), std::forward<Token>(token)); }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto resume(std::string id, Token&& token = {}) { return verb(detail::agent_verb::resume, std::move(id), std::forward<Token>(token)); }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto remove(std::string id, Token&& token = {}) { return verb(detail::agent_verb::remove, std::move(id), std::forward<Token>(token)); }

 private:
  template <class Token>
  auto run(kind k, request req, std::string id, Token&& token) {
    return asio::async_initiate<Token, void(result)>(
        [impl = impl_, k](auto h, request r, std::string i) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::agent_run(impl, k, std::move(r), std::move(i), std::move(h));
        },
        token, std::move(req), std::move(id));
  }
  template <class Token>
  auto verb(detail::agent_verb v, std::string id, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_, v](auto h, std::string i) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::agent_verb_call(impl, v, std::move(i), std::move(h));
        },
        token, std::move(id));
  }
  std::shared_ptr<detail::agent_client_impl> impl_;
};

}  // namespace tether::transfer
