// tether/transfer/impl/agent_client.ipp: an application's connection to the agent: calls
// matched to answers by id, an events long-poll, reconnection with backoff (and starting the
// agent), and results handed to their waiters, then acknowledged.
#pragma once

#include <tether/net/backoff.hpp>
#include <tether/transfer/agent.hpp>
#include <tether/transfer/detail/agent_protocol.hpp>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <tuple>
#include <map>

namespace tether::transfer::detail {

namespace agc {

namespace ag = agent;
using local = asio::local::stream_protocol;
/// A call's continuation (move-only: it may own the caller's completion handler).
using answer_fn = asio::any_completion_handler<void(error_code, ag::json)>;

/// What an error answer means to the caller.
inline error_code code_of(const ag::json& err) {
  const int c = err.is_object() && err.contains("code") && err["code"].is_number_integer() ? err["code"].get<int>() : 0;
  switch (static_cast<ag::rpc_code>(c)) {
    case ag::rpc_code::not_found: return make_error_code(error::not_found);
    case ag::rpc_code::limit_reached: return make_error_code(error::busy);
    case ag::rpc_code::refused: return make_error_code(error::state_locked);
    case ag::rpc_code::too_large: return make_error_code(error::json_too_large);
    default: return make_error_code(error::invalid_argument);
  }
}

inline result failed_result(const std::string& id, error_code ec, std::string message) {
  result r;
  r.id = id;
  r.error = ec;
  r.message = std::move(message);
  return r;
}

// Starts `program --state DIR --socket PATH` detached from this process (its own session,
// reaped by init), unless another client holds the start lock: then that one starts it.
// Returns the lock, held until the agent answers (or we give up).
inline int start_agent(const agent_client_options& o, const net::logger& log) {
  const auto lock_path = o.socket_path.string() + ".start.lock";
  std::error_code sec;
  if (std::filesystem::create_directories(o.socket_path.parent_path(), sec))
    std::filesystem::permissions(o.socket_path.parent_path(), std::filesystem::perms::owner_all, sec);
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;  // another client is starting it
  }
  const auto state = o.start_state.empty() ? default_agent_state() : o.start_state;
  // Made here for the agent's log: private, as the agent makes it (records hold URLs and headers).
  if (std::filesystem::create_directories(state, sec)) std::filesystem::permissions(state, std::filesystem::perms::owner_all, sec);
  const auto log_path = (state / "agent.log").string();
  std::vector<std::string> args{o.start_program.string(), "--state", state.string(), "--socket", o.socket_path.string()};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  log(net::log_level::info, "tether.agent_client: starting " + args[0] + " --state " + args[2]);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    const int nul = ::open("/dev/null", O_RDWR);
    const int err = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(nul, 0);
    ::dup2(nul, 1);
    ::dup2(err >= 0 ? err : nul, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  return fd;
}

}  // namespace agc

struct agent_client_impl : std::enable_shared_from_this<agent_client_impl> {
  using json = agent::json;
  struct call {
    std::string method;
    json params;
    agc::answer_fn done;
    bool sent = false;
  };

  asio::any_io_executor user_ex;
  asio::strand<asio::any_io_executor> strand;
  agent_client_options o;
  std::optional<agc::local::socket> sock;
  asio::steady_timer retry_timer;
  asio::steady_timer close_timer;
  net::backoff backoff;
  std::chrono::steady_clock::time_point failing_since{};
  bool connecting = false, attached = false, writing = false, closed = false, started = false, refused = false;
  bool closing = false;        ///< closed by its owner: acknowledgements still go out
  std::uint64_t gen = 0;       ///< the connection's generation: handlers of an older one are stale
  std::size_t acks_owed = 0;   ///< results handed to handlers whose ack is not answered yet
  std::uint64_t poll_id = 0;  ///< the events call in flight, if any
  int start_lock = -1;
  std::string in;
  std::deque<std::string> outbox;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, call> calls;
  std::uint64_t cursor = 0;
  bool cursor_known = false;
  std::map<std::string, std::vector<agent_result_handler>> waiters;

  agent_client_impl(const asio::any_io_executor& ex, agent_client_options opts)
      : user_ex(ex), strand(asio::make_strand(ex)), o(std::move(opts)), retry_timer(strand), close_timer(strand), backoff(o.reconnect) {}

  void log(net::log_level l, const std::string& line) const { o.log(l, "tether.agent_client: " + line); }

  /// Completes `h` with `args` on its executor, never inside the caller's stack (a handler may
  /// call the client again), then runs `after` on the strand.
  template <class Handler, class... Args>
  void finish(Handler h, std::function<void()> after, Args... args) {
    asio::any_completion_executor ex = asio::prefer(asio::any_completion_executor(asio::get_associated_executor(h, user_ex)),
                                                    asio::execution::outstanding_work.tracked);
    asio::post(strand, [self = shared_from_this(), ex, h = std::move(h), after = std::move(after),
                        args = std::make_tuple(std::move(args)...)]() mutable {
      asio::dispatch(ex, [self, h = std::move(h), after = std::move(after), args = std::move(args)]() mutable {
        std::apply([&h](auto&&... a) { std::move(h)(std::move(a)...); }, std::move(args));
        if (after) asio::post(self->strand, std::move(after));
      });
    });
  }

  // --- calls ---
  // Continuations kept in `calls` and `waiters` run only from here, so they hold the client by
  // pointer: a shared pointer kept inside it would keep it alive from within (a cycle that
  // leaks when its executor stops before the close runs).
  std::uint64_t invoke(std::string method, json params, agc::answer_fn done) {
    const bool shut_out = closed || (closing && method != "ack");
    if (shut_out || calls.size() >= o.max_pending) {
      std::move(done)(make_error_code(shut_out ? error::client_closed : error::busy), nullptr);
      return 0;
    }
    const auto id = next_id++;
    // emplace: Boost 1.81's any_completion_handler move assignment copies itself into a loop.
    calls.emplace(id, call{std::move(method), std::move(params), std::move(done)});
    if (attached) send(id);
    else connect();
    return id;
  }
  void send(std::uint64_t id) {
    auto& c = calls.at(id);
    c.sent = true;
    write_line(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", c.method}, {"params", c.params}}.dump() + "\n");
  }
  void write_line(std::string line) {
    outbox.push_back(std::move(line));
    if (!writing) write_next();
  }
  void write_next() {
    if (!sock || outbox.empty()) return;
    writing = true;
    asio::async_write(*sock, asio::buffer(outbox.front()),
                      asio::bind_executor(strand, [self = shared_from_this(), g = gen](error_code ec, std::size_t) {
                        if (g != self->gen) return;  // a connection given up already
                        self->writing = false;
                        if (ec) return self->lost(ec);
                        self->outbox.pop_front();
                        self->write_next();
                      }));
  }

  // --- the connection ---
  void connect() {
    if (connecting || attached || closed) return;
    connecting = true;
    ++gen;
    sock.emplace(strand);
    sock->async_connect(agc::local::endpoint(o.socket_path.string()),
                        asio::bind_executor(strand, [self = shared_from_this(), g = gen](error_code ec) {
                          if (self->closed || g != self->gen) return;
                          if (ec) return self->lost(ec);
                          // The agent must be our own user's: a socket in a directory someone
                          // else could write is not trusted with our requests (and headers).
                          ucred cred{};
                          socklen_t len = sizeof cred;
                          if (::getsockopt(self->sock->native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
                              cred.uid != ::geteuid()) {
                            self->log(net::log_level::error, "the agent at " + self->o.socket_path.string() +
                                                                 " runs as uid " + std::to_string(cred.uid) +
                                                                 ", not as this user: not used");
                            self->refused = true;
                            return self->lost(make_error_code(error::rejected));
                          }
                          self->read();
                          self->write_line(json{{"jsonrpc", "2.0"},
                                                {"id", 0},
                                                {"method", "attach"},
                                                {"params", {{"session", self->o.session}}}}
                                               .dump() +
                                           "\n");
                        }));
  }
  void read() {
    asio::async_read_until(*sock, asio::dynamic_buffer(in, 64u << 20), '\n',
                           asio::bind_executor(strand, [self = shared_from_this(), g = gen](error_code ec, std::size_t n) {
                             if (self->closed || g != self->gen) return;
                             if (ec) return self->lost(ec);
                             auto j = json::parse(self->in.begin(), self->in.begin() + static_cast<std::ptrdiff_t>(n),
                                                  nullptr, false);
                             self->in.erase(0, n);
                             if (!self->answer(j)) return self->lost(make_error_code(error::protocol_error));
                             self->read();
                           }));
  }
  bool answer(const json& j) {
    if (!j.is_object() || !j.contains("id")) return false;
    const auto& id = j["id"];
    if (id.is_null()) {  // refused as a whole (another user's agent, too many connections)
      std::string msg = "no reason given";
      if (auto e = j.find("error"); e != j.end() && e->is_object()) msg = e->value("message", msg);
      log(net::log_level::error, "the agent at " + o.socket_path.string() + " refused this client: " + msg);
      refused = true;
      return false;
    }
    if (!id.is_number_unsigned()) return false;
    const auto n = id.get<std::uint64_t>();
    if (n == 0) return attached_now(j);
    auto it = calls.find(n);
    if (it == calls.end()) return true;
    auto done = std::move(it->second.done);
    const auto method = std::move(it->second.method);
    calls.erase(it);
    if (auto e = j.find("error"); e != j.end() && method != "get" && method != "ack" && method != "events")
      log(net::log_level::warn, method + ": the agent answered: " + (e->is_object() ? e->value("message", std::string{}) : e->dump()));
    if (auto e = j.find("error"); e != j.end()) std::move(done)(agc::code_of(*e), *e);
    else std::move(done)(error_code{}, j.value("result", json()));
    if (closing && acks_owed == 0) shut();
    return true;
  }
  bool attached_now(const json& j) {
    const auto r = j.find("result");
    if (r == j.end() || !r->is_object() || !(*r)["cursor"].is_number_unsigned()) {
      log(net::log_level::error, "attach refused: " + j.dump());
      return false;
    }
    connecting = false;
    attached = true;
    backoff.reset();
    failing_since = {};
    if (start_lock >= 0) ::close(start_lock), start_lock = -1;
    started = false;
    const bool resync = cursor_known;  // a reconnect: what happened meanwhile is read again
    if (!cursor_known) cursor = (*r)["cursor"].get<std::uint64_t>(), cursor_known = true;
    for (auto& [id, c] : calls) send(id);
    poll();
    if (resync) recheck_waiters();
    return true;
  }
  void lost(error_code ec) {
    if (closed) return;
    const bool was = attached;
    attached = connecting = writing = false;
    ++gen;  // what the old connection's handlers still report is not news
    if (poll_id) calls.erase(poll_id), poll_id = 0;  // a new one starts once attached
    outbox.clear();
    in.clear();
    if (sock) {
      error_code ignored;
      sock->close(ignored);
    }
    for (auto& [id, c] : calls) c.sent = false;  // sent again once attached
    if (was) log(net::log_level::warn, "connection to the agent lost: " + ec.message() + "; reconnecting");
    const auto now = std::chrono::steady_clock::now();
    if (failing_since == std::chrono::steady_clock::time_point{}) failing_since = now;
    if (refused) {
      refused = false;
      return give_up(make_error_code(error::rejected));
    }
    if (!o.start_program.empty() && !started) {
      started = true;  // once per outage
      start_lock = agc::start_agent(o, o.log);
    }
    const auto delay = backoff.next(std::chrono::duration_cast<std::chrono::milliseconds>(now - failing_since));
    if (!delay) return give_up(ec);
    retry_timer.expires_after(*delay);
    retry_timer.async_wait(asio::bind_executor(strand, [self = shared_from_this()](error_code e) {
      if (!e && !self->closed) self->connect();
    }));
  }
  void give_up(error_code why) {
    log(net::log_level::error, "no agent at " + o.socket_path.string() + ": " + why.message());
    backoff.reset();
    failing_since = {};
    started = false;
    if (start_lock >= 0) ::close(start_lock), start_lock = -1;
    auto pending = std::move(calls);
    calls.clear();
    auto ws = std::move(waiters);
    waiters.clear();
    const auto ec = make_error_code(error::retries_exhausted);
    for (auto& [id, c] : pending) std::move(c.done)(ec, nullptr);
    for (auto& [id, hs] : ws)
      for (auto& h : hs) complete(std::move(h), agc::failed_result(id, ec, "no agent answers at " + o.socket_path.string()), false);
  }

  // --- events ---
  void poll() {
    if (poll_id || !attached) return;
    poll_id = invoke("events", {{"after", cursor}, {"wait_ms", 25'000}}, [self = this](error_code ec, const json& r) {
      self->poll_id = 0;
      if (ec || !r.is_object()) {
        // A lost connection polls again once attached; an answer refused by the agent is a bug
        // worth seeing, not one to loop on.
        if (ec && ec != error::client_closed && ec != error::retries_exhausted)
          self->log(net::log_level::error, "events: " + ec.message());
        return;
      }
      if (r.value("gap", false)) self->recheck_waiters();
      if (auto c = r.find("cursor"); c != r.end() && c->is_number_unsigned()) self->cursor = c->get<std::uint64_t>();
      if (auto ev = r.find("events"); ev != r.end() && ev->is_array())
        for (const auto& e : *ev) self->on_event(e);
      self->poll();
    });
  }
  void on_event(const json& e) {
    if (!e.is_object() || !e.contains("type") || !e.contains("id") || !e["id"].is_string()) return;
    const auto type = e["type"].get<std::string>();
    const auto id = e["id"].get<std::string>();
    if (type == "result") {
      std::string why;
      if (auto r = agent::decode_result_full(e.value("result", json()), why)) deliver(id, *r);
      else log(net::log_level::warn, "a result of " + id + " does not decode: " + why);
    } else if (type == "progress" && o.on_progress) {
      progress p;
      p.id = id;
      p.bytes_done = e.value("bytes_done", std::uint64_t{0});
      p.bytes_durable = e.value("bytes_durable", std::uint64_t{0});
      if (e.contains("bytes_total")) p.bytes_total = e.value("bytes_total", std::uint64_t{0});
      p.bytes_per_second = e.value("bytes_per_second", 0.0);
      asio::post(user_ex, [f = o.on_progress, p] { f(p); });
    } else if (type == "retry" && o.on_retry) {
      retry_notice n;
      n.id = id;
      n.attempt = e.value("attempt", 0u);
      n.delay = std::chrono::milliseconds{e.value("delay_ms", std::int64_t{0})};
      n.message = e.value("message", std::string{});
      n.http_status = e.value("http_status", 0u);
      asio::post(user_ex, [f = o.on_retry, n] { f(n); });
    }
  }
  // Waiters whose result may have come while we did not listen: ask for each.
  void recheck_waiters() {
    std::vector<std::string> ids;
    for (const auto& [id, hs] : waiters) ids.push_back(id);
    for (const auto& id : ids) check(id);
  }
  void check(const std::string& id) {
    invoke("get", {{"id", id}}, [self = this, id](error_code ec, const json& r) {
      if (ec == error::not_found) return self->deliver(id, agc::failed_result(id, ec, "no transfer " + id + " in session " + self->o.session), false);
      if (ec) return;  // the connection's fate decides; a reconnect asks again
      std::string why;
      auto i = agent::decode_info(r, why);
      if (i && i->result) self->deliver(id, *i->result);
    });
  }
  void deliver(const std::string& id, const result& r, bool ack = true) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return;  // nobody here waits: it stays with the agent
    auto hs = std::move(it->second);
    waiters.erase(it);
    for (auto& h : hs) complete(std::move(h), r, ack);
  }
  // Runs the handler on its executor, then acknowledges: a crash before that gets it again.
  void complete(agent_result_handler h, result r, bool ack) {
    std::function<void()> then;
    if (ack) {
      ++acks_owed;  // a close waits for it (bounded): the result must not come back next time
      then = [self = shared_from_this(), id = r.id] {
        self->invoke("ack", {{"id", id}}, [raw = self.get()](error_code, const json&) {
          if (--raw->acks_owed == 0 && raw->closing) raw->shut();
        });
      };
    }
    finish(std::move(h), std::move(then), std::move(r));
  }

  // Closing: no new calls; acknowledgements owed go out first (for at most close_timeout).
  void begin_close() {
    if (closing || closed) return;
    closing = true;
    if (poll_id) calls.erase(poll_id), poll_id = 0;
    if (acks_owed == 0 || !attached) return shut();
    close_timer.expires_after(o.close_timeout);
    close_timer.async_wait(asio::bind_executor(strand, [self = shared_from_this()](error_code e) {
      if (!e) self->shut();
    }));
  }
  void shut() {
    if (closed) return;
    closed = true;
    if (acks_owed > 0)
      log(net::log_level::warn, "closed with " + std::to_string(acks_owed) +
                                    " acknowledgements not taken by the agent: those results come again");
    error_code ignored;
    retry_timer.cancel();
    close_timer.cancel();
    if (sock) sock->close(ignored);
    if (start_lock >= 0) ::close(start_lock), start_lock = -1;
    auto pending = std::move(calls);
    calls.clear();
    for (auto& [id, c] : pending) std::move(c.done)(make_error_code(error::client_closed), nullptr);
    auto ws = std::move(waiters);
    waiters.clear();
    for (auto& [id, hs] : ws)
      for (auto& h : hs) complete(std::move(h), agc::failed_result(id, make_error_code(error::client_closed), "the client was closed"), false);
  }
};

std::shared_ptr<agent_client_impl> open_agent_client(asio::any_io_executor ex, agent_client_options o) {  // NOLINT(performance-unnecessary-value-param): the public signature
  if (o.socket_path.empty()) o.socket_path = default_agent_socket();
  if (o.session.empty()) o.session = "default";
  return std::make_shared<agent_client_impl>(std::move(ex), std::move(o));
}

void close_agent_client(agent_client_impl& c) {
  auto self = c.shared_from_this();
  asio::dispatch(c.strand, [self] { self->begin_close(); });
}

void agent_submit(const std::shared_ptr<agent_client_impl>& c, kind k, request r, std::string id, agent_done_handler h) {
  std::error_code sec;
  if (!r.file.empty()) r.file = std::filesystem::absolute(r.file, sec).lexically_normal();
  asio::dispatch(c->strand, [c, k, r = std::move(r), id = std::move(id), h = std::move(h)]() mutable {
    c->invoke(k == kind::download ? "download" : "upload", agent::encode_add(k, id, r),
              [c = c.get(), h = std::move(h)](error_code ec, const agent::json&) mutable {
                if (h) c->finish(std::move(h), {}, ec);
              });
  });
}

void agent_run(const std::shared_ptr<agent_client_impl>& c, kind k, request r, std::string id, agent_result_handler h) {
  auto wait_id = id;
  agent_done_handler then = asio::bind_executor(
      c->strand, [c = c.get(), id = std::move(wait_id), h = std::move(h)](error_code ec) mutable {
        if (ec) return c->complete(std::move(h), agc::failed_result(id, ec, "the agent did not take " + id + ": " + ec.message()), false);
        c->waiters[id].push_back(std::move(h));
        c->check(id);
      });
  agent_submit(c, k, std::move(r), std::move(id), std::move(then));
}

void agent_wait(const std::shared_ptr<agent_client_impl>& c, std::string id, agent_result_handler h) {
  asio::dispatch(c->strand, [c, id = std::move(id), h = std::move(h)]() mutable {
    c->waiters[id].push_back(std::move(h));
    c->check(id);
  });
}

void agent_resume_all(const std::shared_ptr<agent_client_impl>& c, agent_results_handler h) {
  asio::dispatch(c->strand, [c, h = std::move(h)]() mutable {
    c->invoke("list", agent::json::object(), [c = c.get(), h = std::move(h)](error_code ec, const agent::json& r) mutable {
      struct gather {
        std::vector<result> results;
        std::size_t left = 1;
        std::optional<agent_results_handler> handler;
      };
      auto g = std::make_shared<gather>();
      g->handler.emplace(std::move(h));
      auto one_done = [c, g] {
        if (--g->left > 0) return;
        c->finish(std::move(*g->handler), {}, std::move(g->results));
      };
      if (!ec && r.is_array()) {
        for (const auto& j : r) {
          std::string why;
          auto i = agent::decode_info(j, why);
          if (!i || (i->status == status::paused && !i->result)) continue;
          ++g->left;
          agent_result_handler each = asio::bind_executor(c->strand, [g, one_done](result res) {
            g->results.push_back(std::move(res));
            one_done();
          });
          c->waiters[i->id].push_back(std::move(each));
          c->check(i->id);
        }
      }
      one_done();
    });
  });
}

void agent_list(const std::shared_ptr<agent_client_impl>& c, agent_list_handler h) {
  asio::dispatch(c->strand, [c, h = std::move(h)]() mutable {
    c->invoke("list", agent::json::object(), [c = c.get(), h = std::move(h)](error_code ec, const agent::json& r) mutable {
      std::vector<info> out;
      if (!ec && r.is_array())
        for (const auto& j : r) {
          std::string why;
          if (auto i = agent::decode_info(j, why)) out.push_back(std::move(*i));
        }
      c->finish(std::move(h), {}, ec, std::move(out));
    });
  });
}

void agent_verb_call(const std::shared_ptr<agent_client_impl>& c, agent_verb v, std::string id, agent_done_handler h) {
  static const char* const names[] = {"cancel", "pause", "resume", "remove"};
  asio::dispatch(c->strand, [c, v, id = std::move(id), h = std::move(h)]() mutable {
    c->invoke(names[static_cast<int>(v)], {{"id", id}}, [c = c.get(), h = std::move(h)](error_code ec, const agent::json&) mutable {
      c->finish(std::move(h), {}, ec);
    });
  });
}

}  // namespace tether::transfer::detail
