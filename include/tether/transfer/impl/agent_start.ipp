// tether/transfer/impl/agent_start.ipp: where the agent lives by default, and how it starts
// (its lock, its book read back or set aside, its socket bound or adopted, its transfers
// resumed) and stops.
#pragma once

#include <tether/net/proxy.hpp>
#include <tether/transfer/impl/agent_server.ipp>

#include <sys/stat.h>
#include <unistd.h>

namespace tether::transfer {

namespace {
// An absolute path from the environment, if set to one.
std::optional<std::filesystem::path> env_dir(const char* name) {
  auto v = net::process_environment(name);
  if (!v || v->empty() || v->front() != '/') return std::nullopt;
  return std::filesystem::path(*v);
}
}  // namespace

std::filesystem::path default_agent_socket() {
  if (auto x = env_dir("XDG_RUNTIME_DIR")) return *x / "tether" / "agent.sock";
  return std::filesystem::path("/tmp") / ("tether-" + std::to_string(::geteuid())) / "agent.sock";
}

std::filesystem::path default_agent_state() {
  if (auto x = env_dir("XDG_STATE_HOME")) return *x / "tether" / "agent";
  return env_dir("HOME").value_or("/tmp") / ".local" / "state" / "tether" / "agent";
}

namespace detail {

namespace {

[[noreturn]] void agent_fail(error_code ec, const std::string& what) { throw boost::system::system_error(ec, what); }

// Binds the socket at `path`: its directory made 0700 when missing; a stale socket file (no
// one answers) replaced; a live one refused.
local::acceptor bind_socket(const asio::any_io_executor& ex, const std::filesystem::path& path) {
  const auto dir = path.parent_path();
  std::error_code sec;
  if (!dir.empty() && std::filesystem::create_directories(dir, sec))
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, sec);
  if (sec) agent_fail(error_code(sec.value(), boost::system::system_category()), "agent socket directory " + dir.string());
  // A directory that another user owns or may write could swap the socket under our clients.
  struct stat ds {};
  if (!dir.empty() && ::stat(dir.c_str(), &ds) == 0 && (ds.st_uid != ::geteuid() || (ds.st_mode & 022) != 0))
    agent_fail(make_error_code(error::invalid_argument),
               "agent socket directory " + dir.string() + " is not this user's alone (owner or mode): not used");
  if (path.native().size() >= sizeof(sockaddr_un::sun_path))
    agent_fail(make_error_code(error::invalid_argument), "agent socket path too long: " + path.string());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) agent_fail(make_error_code(error::invalid_argument), path.string() + " exists and is not a socket");
    local::socket probe(ex);
    error_code ec;
    probe.connect(local::endpoint(path.string()), ec);
    if (!ec) agent_fail(make_error_code(error::state_locked), "another agent listens on " + path.string());
    ::unlink(path.c_str());
  }
  local::acceptor a(ex);
  error_code ec;
  a.open(local(), ec);
  if (!ec) a.bind(local::endpoint(path.string()), ec);
  if (!ec) ::chmod(path.c_str(), 0600);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) agent_fail(ec, "agent socket " + path.string());
  return a;
}

// The book from disk: none is a fresh one; one that cannot be read stops the agent (nothing is
// touched); one that does not decode is set aside with its reason, and the agent starts a new
// one (the records it named stay in transfers/, listed by tether-transfer --state).
ag::book load_book(const std::filesystem::path& p, ag::book::limits l, const net::logger& log) {
  error_code ec;
  auto f = open_file(p, O_RDONLY, ec);
  if (ec == boost::system::errc::no_such_file_or_directory) return ag::book(l);
  if (ec) agent_fail(ec, "agent book " + p.string() + ": " + describe_failure(ec));
  std::string text;
  char buf[65536];
  for (std::uint64_t at = 0;;) {
    const auto n = read_some(f, buf, sizeof buf, at, ec);
    if (ec) agent_fail(ec, "agent book " + p.string() + ": " + describe_failure(ec));
    if (n == 0) break;
    text.append(buf, n);
    at += n;
  }
  std::string why;
  auto j = ag::json::parse(text, nullptr, false);
  std::optional<ag::book> b;
  if (j.is_discarded()) why = "not JSON";
  else b = ag::book::decode(j, l, why);
  if (b) return std::move(*b);
  auto aside = p;
  aside += ".corrupt";
  rename_file(p, aside, ec);
  auto reason = aside;
  reason += ".reason";
  error_code ignored;
  replace_file(reason, why + "\n", ignored);
  log(net::log_level::error, "tether.agent: " + p.string() + " is damaged (" + why + "); set aside as " +
                                 aside.string() + ", starting a new book");
  return ag::book(l);
}

}  // namespace

std::shared_ptr<agent_impl> open_agent(asio::any_io_executor ex, agent_options opts) {  // NOLINT(performance-unnecessary-value-param): the public signature
  if (opts.state_dir.empty()) agent_fail(make_error_code(error::invalid_argument), "agent: state_dir is not set");
  auto a = std::make_shared<agent_impl>();
  a->ex = ex;
  std::error_code sec;
  if (std::filesystem::create_directories(opts.state_dir, sec))
    std::filesystem::permissions(opts.state_dir, std::filesystem::perms::owner_all, sec);
  if (sec) agent_fail(error_code(sec.value(), boost::system::system_category()), "agent state " + opts.state_dir.string());
  opts.state_dir = std::filesystem::absolute(opts.state_dir);
  if (opts.socket_path.empty()) opts.socket_path = default_agent_socket();
  error_code ec;
  std::string holder;
  a->lock = lock_file(opts.state_dir / "agent.lock", ec, holder);
  if (ec) agent_fail(ec, "agent state " + opts.state_dir.string() + (holder.empty() ? "" : ": in use by process " + holder));
  a->opts = std::move(opts);
  a->book_path = a->opts.state_dir / "agent.json";
  a->bk = load_book(a->book_path, {a->opts.max_transfers, a->opts.max_sessions, a->opts.max_events_per_session},
                    a->opts.log);

  auto mo = a->opts.manager;
  mo.state_dir = a->opts.state_dir / "transfers";
  if (!mo.log.sink) mo.log = a->opts.log;
  auto user_progress = std::move(mo.on_progress);
  auto user_retry = std::move(mo.on_retry);
  std::weak_ptr<agent_impl> w = a;
  mo.on_progress = [w, ex, user_progress](const progress& p) {
    if (user_progress) user_progress(p);
    ag::json body = {{"type", "progress"}, {"bytes_done", p.bytes_done}, {"bytes_durable", p.bytes_durable},
                     {"bytes_per_second", p.bytes_per_second}};
    if (p.bytes_total) body["bytes_total"] = *p.bytes_total;
    asio::post(ex, [w, id = p.id, body = std::move(body)]() mutable {
      if (auto self = w.lock(); self && !self->stopped) self->publish(id, std::move(body));
    });
  };
  mo.on_retry = [w, ex, user_retry](const retry_notice& n) {
    if (user_retry) user_retry(n);
    ag::json body = {{"type", "retry"}, {"attempt", n.attempt}, {"delay_ms", n.delay.count()},
                     {"message", n.message}, {"http_status", n.http_status}};
    asio::post(ex, [w, id = n.id, body = std::move(body)]() mutable {
      if (auto self = w.lock(); self && !self->stopped) self->publish(id, std::move(body));
    });
  };
  a->mgr.emplace(ex, std::move(mo));

  if (a->opts.listen_fd >= 0) {
    a->acceptor.emplace(ex, local(), a->opts.listen_fd);
    error_code lec;
    const auto where = a->acceptor->local_endpoint(lec);
    if (!lec) a->opts.socket_path = where.path();  // what it serves, for the log and socket_path()
  } else {
    a->acceptor.emplace(bind_socket(ex, a->opts.socket_path));
    a->own_socket_file = true;
  }

  // Reconcile the book with the records: finished entries whose record is gone were
  // acknowledged just before a crash; unfinished, unpaused ones run again (the manager resumes
  // them from their checkpoints, or creates them when the crash came before their record).
  std::set<std::string> recorded;
  for (const auto& i : a->mgr->list()) recorded.insert(i.id);
  std::vector<std::string> gone, again;
  for (const auto& [id, o] : a->bk.all()) {
    if (o.finished && !recorded.count(id)) gone.push_back(id);
    else if (!o.finished && !o.paused) again.push_back(id);
  }
  for (const auto& id : gone) a->bk.forget(id);
  a->persist();
  for (const auto& id : again) a->run(id);
  for (const auto& id : recorded)
    if (!a->bk.find(id))
      a->log(net::log_level::warn, "transfer " + id + " in " + (a->opts.state_dir / "transfers").string() +
                                       " belongs to no session; left as it is");
  a->log(net::log_level::info, "listening on " + a->opts.socket_path.string() + " (" + std::to_string(again.size()) +
                                   " transfers resumed)");
  a->accept();
  return a;
}

void stop_agent(agent_impl& a) {
  if (a.stopped) return;
  a.stopped = true;
  error_code ignored;
  if (a.acceptor) a.acceptor->close(ignored);
  for (auto& p : a.polls) p.timer->cancel();
  a.polls.clear();
  for (const auto& c : a.conns) c->sock.close(ignored);
  a.conns.clear();
  a.mgr.reset();  // stops the transfers, their records resumable
  if (a.own_socket_file) ::unlink(a.opts.socket_path.c_str());
  a.persist();
  a.lock.close();
}

std::filesystem::path agent_socket(const agent_impl& a) { return a.opts.socket_path; }

}  // namespace detail
}  // namespace tether::transfer
