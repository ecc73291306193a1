// tether/transfer/impl/agent_server.ipp: the running agent: requests from its peers on the Unix
// socket, the book on disk, and the hosted manager (agent_start.ipp opens and stops it).
// Decisions live in agent_protocol (what a line says) and agent_book (who owns what, which
// events a session gets).
#pragma once

#include <tether/net/proxy.hpp>
#include <tether/transfer/agent.hpp>
#include <tether/transfer/detail/agent_book.hpp>
#include <tether/transfer/detail/agent_protocol.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/manager.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <list>
#include <set>

namespace tether::transfer {

namespace detail {

namespace ag = agent;
using local = asio::local::stream_protocol;

namespace {

/// One client connection: lines in, answers out in order through a bounded outbox.
struct agent_conn : std::enable_shared_from_this<agent_conn> {
  static constexpr std::size_t max_outbox_bytes = 16u << 20;

  explicit agent_conn(local::socket s) : sock(std::move(s)) {}
  local::socket sock;
  std::string in;
  std::string session;
  std::deque<std::string> outbox;
  std::size_t outbox_bytes = 0;
  std::size_t parked = 0;  ///< events calls waiting here
  bool writing = false;

  void send(std::string line) {
    if (!sock.is_open()) return;
    outbox_bytes += line.size();
    outbox.push_back(std::move(line));
    if (outbox_bytes > max_outbox_bytes) {  // a client that does not read its answers
      error_code ignored;
      sock.close(ignored);
      return;
    }
    if (!writing) write_next();
  }
  void write_next() {
    writing = true;
    asio::async_write(sock, asio::buffer(outbox.front()), [self = shared_from_this()](error_code ec, std::size_t) {
      self->outbox_bytes -= self->outbox.front().size();
      self->outbox.pop_front();
      self->writing = false;
      if (ec) {
        self->sock.close(ec);
        return;
      }
      if (!self->outbox.empty()) self->write_next();
    });
  }
};

/// An events call waiting for its session's next event or its deadline.
struct parked_poll {
  std::weak_ptr<agent_conn> conn;
  ag::json id;
  std::string session;
  std::uint64_t after = 0;
  std::uint64_t serial = 0;  ///< how its deadline finds it (an iterator may be gone by then)
  std::unique_ptr<asio::steady_timer> timer;
};

}  // namespace

struct agent_impl : std::enable_shared_from_this<agent_impl> {
  asio::any_io_executor ex;
  agent_options opts;
  file lock;
  std::filesystem::path book_path;
  ag::book bk{ag::book::limits{}};
  std::optional<manager> mgr;
  std::optional<local::acceptor> acceptor;
  bool own_socket_file = false;
  std::set<std::shared_ptr<agent_conn>> conns;
  std::list<parked_poll> polls;
  std::uint64_t poll_serial = 0;
  bool stopped = false;

  void log(net::log_level l, const std::string& line) const { opts.log(l, "tether.agent: " + line); }

  // --- the book on disk ---
  void persist() {
    if (!bk.dirty()) return;
    error_code ec;
    replace_file(book_path, bk.encode().dump(2), ec);
    if (ec) {
      // The change stays in memory and is written with the next one; a crash before that
      // loses it, which restart handles (an unknown record is left alone, a known one resumed).
      log(net::log_level::error, "cannot write " + book_path.string() + ": " + describe_failure(ec));
      return;
    }
    bk.clean();
  }

  // --- events ---
  /// Numbers an event of `id` and wakes its session's waiting events calls. A result event
  /// (`ending`) marks the transfer finished with its number, on disk with the event's.
  void publish(const std::string& id, ag::json body, bool ending = false) {
    auto* o = bk.find(id);
    if (!o) return;
    const auto session = o->session;
    body["id"] = id;
    const auto seq = bk.publish(id, std::move(body));
    if (ending) {
      o->finished = true;
      o->result_seq = seq;
      bk.touch();
    }
    persist();  // a new block of event numbers reaches the disk before anyone sees one
    for (auto it = polls.begin(); it != polls.end();) {
      if (it->session == session) {
        answer_poll(*it);
        it = polls.erase(it);
      } else {
        ++it;
      }
    }
  }
  void answer_poll(parked_poll& p) {
    if (p.timer) p.timer->cancel();
    auto c = p.conn.lock();
    if (!c) return;
    --c->parked;
    c->send(ag::result_line(p.id, events_json(p.session, p.after)));
  }
  ag::json events_json(const std::string& session, std::uint64_t after) const {
    const auto a = bk.events_after(session, after, 256);
    ag::json ev = ag::json::array();
    for (const auto& e : a.events) {
      auto b = e.body;
      b["seq"] = e.seq;
      ev.push_back(std::move(b));
    }
    return {{"events", std::move(ev)}, {"cursor", a.cursor}, {"gap", a.gap}};
  }

  // --- transfers ---
  void run(const std::string& id) {
    auto* o = bk.find(id);
    if (!o || !mgr) return;
    auto done = [w = weak_from_this()](const result& r) {
      if (auto self = w.lock()) self->finished(r);
    };
    if (o->kind == kind::download)
      mgr->download(o->req, id, asio::bind_executor(ex, std::move(done)));
    else
      mgr->upload(o->req, id, asio::bind_executor(ex, std::move(done)));
  }
  void finished(const result& r) {
    auto* o = bk.find(r.id);
    if (!o || o->finished || stopped) return;  // removed meanwhile, or the agent stops
    if (r.error == error::paused) {
      // Paused as asked; or resumed while it was stopping: then it goes on now.
      if (o->paused) publish(r.id, {{"type", "paused"}});
      else run(r.id);
      return;
    }
    publish(r.id, {{"type", "result"}, {"result", ag::encode_result_full(r)}}, /*ending=*/true);
  }
  std::optional<info> info_of(const std::string& id) const {
    for (auto& i : mgr->list())
      if (i.id == id) return i;
    return std::nullopt;
  }
  ag::json info_json(const std::string& id, const ag::owned& o) const {
    if (auto i = info_of(id)) {
      if (!o.finished && i->result) i->result.reset();  // a run still going, or its end not yet seen here
      if (!o.finished && o.paused) i->status = status::paused;  // asked: it stops at its next step
      auto j = ag::encode_info(*i);
      if (o.finished) j["result_seq"] = o.result_seq;
      return j;
    }
    info i;  // handed over, its record not written yet
    i.id = id;
    i.kind = o.kind;
    i.status = o.paused ? status::paused : status::queued;
    i.file = o.req.file;
    return ag::encode_info(i);
  }

  // --- requests ---
  void handle(const std::shared_ptr<agent_conn>& c, std::string_view line) {
    auto parsed = ag::parse_call(line, opts.max_request_bytes);
    if (auto* e = std::get_if<ag::rpc_error>(&parsed)) return c->send(ag::error_line(*e));
    auto& call = std::get<ag::rpc_call>(parsed);
    auto fail = [&](ag::rpc_code code, std::string msg) { c->send(ag::error_line({code, std::move(msg), call.id})); };
    auto ok = [&](const ag::json& r) { c->send(ag::result_line(call.id, r)); };
    std::string why;
    const auto& m = call.method;
    if (m == "attach") {
      auto s = ag::decode_session(call.params, why);
      if (!s) return fail(ag::rpc_code::invalid_params, why);
      if (!c->session.empty() && c->session != *s)
        return fail(ag::rpc_code::invalid_request, "this connection is attached to session " + c->session);
      if (!bk.open_session(*s)) return fail(ag::rpc_code::limit_reached, "too many sessions");
      c->session = *s;
      return ok({{"session", *s}, {"cursor", bk.last_seq()}});
    }
    static const char* const known[] = {"download", "upload", "get", "list", "cancel", "pause",
                                        "resume",   "ack",    "remove", "events"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return m == k; }) == std::end(known))
      return fail(ag::rpc_code::method_not_found, "no method \"" + m + "\"");
    if (c->session.empty()) return fail(ag::rpc_code::not_attached, "call attach {session} first");
    const auto& session = c->session;

    if (m == "download" || m == "upload") {
      const auto k = m == "download" ? kind::download : kind::upload;
      auto a = ag::decode_add(call.params, k, why);
      if (!a) return fail(ag::rpc_code::invalid_params, why);
      switch (bk.claim(session, a->id, k, a->req)) {
        case ag::claim_result::other_session: return fail(ag::rpc_code::id_in_use, "the id " + a->id + " is another session's");
        case ag::claim_result::limit_reached: return fail(ag::rpc_code::limit_reached, "the agent holds its limit of transfers");
        case ag::claim_result::same: {
          auto* o = bk.find(a->id);
          if (o->kind != k || o->req.url != a->req.url || o->req.file != a->req.file)
            return fail(ag::rpc_code::id_in_use, "the id " + a->id + " already names a transfer of another URL or file");
          if (o->paused) resume(a->id, *o);  // asked for again: it goes on, as with the manager
          return ok({{"id", a->id}, {"created", false}});
        }
        case ag::claim_result::created: break;
      }
      persist();  // the session owns it on disk before anything moves
      publish(a->id, {{"type", "added"}});
      run(a->id);
      return ok({{"id", a->id}, {"created", true}});
    }
    if (m == "list") {
      if (!call.params.empty()) return fail(ag::rpc_code::invalid_params, "list takes no parameters");
      ag::json all = ag::json::array();
      for (const auto& [id, o] : bk.all())
        if (o.session == session) all.push_back(info_json(id, o));
      return ok(all);
    }
    if (m == "events") {
      auto e = ag::decode_events(call.params, opts.max_event_wait, why);
      if (!e) return fail(ag::rpc_code::invalid_params, why);
      auto now = events_json(session, e->after);
      if (!now["events"].empty() || now["gap"] == true || e->wait.count() == 0) return ok(now);
      if (c->parked >= opts.max_requests_in_flight)
        return fail(ag::rpc_code::limit_reached, "too many events calls waiting on this connection");
      ++c->parked;
      auto& p = polls.emplace_back();
      p.conn = c;
      p.id = call.id;
      p.session = session;
      p.after = e->after;
      p.serial = ++poll_serial;
      p.timer = std::make_unique<asio::steady_timer>(ex, e->wait);
      p.timer->async_wait([w = weak_from_this(), serial = p.serial](error_code) {
        auto self = w.lock();
        if (!self) return;
        auto at = std::find_if(self->polls.begin(), self->polls.end(),
                               [serial](const parked_poll& q) { return q.serial == serial; });
        if (at == self->polls.end()) return;  // answered already
        self->answer_poll(*at);
        self->polls.erase(at);
      });
      return;
    }
    // The rest name one of the session's transfers.
    auto id = ag::decode_id(call.params, why);
    if (!id) return fail(ag::rpc_code::invalid_params, why);
    auto* o = bk.find(session, *id);
    if (!o) return fail(ag::rpc_code::not_found, "no transfer " + *id + " in session " + session);
    if (m == "get") return ok(info_json(*id, *o));
    if (m == "resume") {
      if (o->finished) return fail(ag::rpc_code::refused, "transfer " + *id + " has ended");
      if (o->paused) resume(*id, *o);
      return ok({{"id", *id}});
    }
    if (m == "ack") {
      if (!o->finished) return fail(ag::rpc_code::refused, "transfer " + *id + " has not ended");
      return forget(c, call.id, *id);
    }
    if (m == "remove") return forget(c, call.id, *id);
    if (m == "pause" && (o->paused || o->finished)) return ok({{"id", *id}});
    const auto ec = m == "cancel" ? mgr->cancel(*id) : mgr->pause(*id);
    if (ec == error::not_found && m == "cancel") {
      // Handed over but never recorded (or removed behind our back): nothing runs it.
      result r;
      r.id = *id;
      r.kind = o->kind;
      r.file = o->req.file;
      r.error = make_error_code(error::cancelled);
      r.message = "cancelled";
      finished(r);
    } else if (ec) {
      return fail(ag::rpc_code::refused, m + " " + *id + ": " + ec.message());
    }
    if (m == "pause") {
      o->paused = true;  // the agent's word from now on: a restart does not run it
      bk.touch();
      persist();
    }
    if (m == "cancel" && !o->finished) settle_from_record(*id);
    return ok({{"id", *id}});
  }
  void resume(const std::string& id, ag::owned& o) {
    o.paused = false;
    bk.touch();
    persist();
    publish(id, {{"type", "resumed"}});
    run(id);
  }
  // A transfer that was not running (paused) ends in its record without a completion here.
  void settle_from_record(const std::string& id) {
    if (auto i = info_of(id); i && i->result) finished(*i->result);
  }
  void forget(const std::shared_ptr<agent_conn>& c, const ag::json& call_id, const std::string& id) {
    // The record goes first: a crash between the two leaves an owned, finished entry without a
    // record, which the next start forgets (the other order would leave an unowned record).
    if (auto ec = mgr->remove(id); ec && ec != error::not_found)
      return c->send(ag::error_line({ag::rpc_code::refused, "remove " + id + ": " + ec.message(), call_id}));
    bk.forget(id);
    persist();
    c->send(ag::result_line(call_id, {{"id", id}}));
  }

  // --- connections ---
  void accept() {
    acceptor->async_accept([self = shared_from_this()](error_code ec, local::socket s) {
      if (self->stopped) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        self->log(net::log_level::warn, "accept: " + ec.message());
      } else {
        self->admit(std::move(s));
      }
      self->accept();
    });
  }
  void admit(local::socket s) {
    auto c = std::make_shared<agent_conn>(std::move(s));
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(c->sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::geteuid()) {
      log(net::log_level::warn, "refused a connection from uid " + std::to_string(cred.uid) + " (pid " +
                                    std::to_string(cred.pid) + "): this agent serves its own user only");
      c->send(ag::error_line({ag::rpc_code::refused, "this agent serves its own user only", nullptr}));
      return;  // closed once the line is written (the last reference goes with the write)
    }
    if (conns.size() >= opts.max_connections) {
      c->send(ag::error_line({ag::rpc_code::limit_reached, "too many connections", nullptr}));
      return;
    }
    conns.insert(c);
    read(c);
  }
  void read(const std::shared_ptr<agent_conn>& c) {
    asio::async_read_until(c->sock, asio::dynamic_buffer(c->in, opts.max_request_bytes + 1), '\n',
                           [self = shared_from_this(), c](error_code ec, std::size_t n) {
                             if (self->stopped) return;
                             if (ec) {
                               if (ec == asio::error::not_found)  // a line past the limit: no way to resync
                                 c->send(ag::error_line({ag::rpc_code::too_large,
                                                         "request longer than " +
                                                             std::to_string(self->opts.max_request_bytes) + " bytes",
                                                         nullptr}));
                               self->drop(c);
                               return;
                             }
                             std::string_view line(c->in.data(), n - 1);
                             if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                             if (!line.empty()) self->handle(c, line);
                             c->in.erase(0, n);
                             self->read(c);
                           });
  }
  void drop(const std::shared_ptr<agent_conn>& c) {
    for (auto it = polls.begin(); it != polls.end();) {
      if (it->conn.lock() == c) {
        it->timer->cancel();
        it = polls.erase(it);
      } else {
        ++it;
      }
    }
    conns.erase(c);
    if (!c->writing) {
      error_code ignored;
      c->sock.close(ignored);
    }
  }
};

}  // namespace detail
}  // namespace tether::transfer
