// tether/transfer/impl/manager.ipp: the manager's API: open, download/upload (attach decided by
// detail/lifecycle.hpp), resume_all, list, cancel/pause/remove, prune, shutdown.
#pragma once

#include <tether/net/url.hpp>
#include <tether/transfer/detail/manager_impl.hpp>
#include <tether/transfer/manager.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>

#include <future>

namespace tether::transfer::detail {

namespace {

/// Runs `f` on the manager's thread and waits for its answer (inline when already there).
template <class F>
auto on_manager_thread(manager_impl& m, F f) -> decltype(f()) {
  if (m.ioc.get_executor().running_in_this_thread() || !m.thread.joinable()) return f();
  std::packaged_task<decltype(f())()> task(std::move(f));
  auto fut = task.get_future();
  asio::post(m.ioc, [&task] { task(); });
  return fut.get();
}

result invalid(std::string id, kind k, std::string message, error e = error::invalid_argument) {
  result r;
  r.id = std::move(id);
  r.kind = k;
  r.outcome = outcome::failed;
  r.error = make_error_code(e);
  r.message = std::move(message);
  return r;
}

/// Checks a new request and builds its record (nothing touches the disk yet).
std::optional<result> validate(const manager_impl& m, kind k, request& req, const std::string& id, record& rec) {
  auto fail = [&](std::string why, error e = error::invalid_argument) { return invalid(id, k, std::move(why), e); };
  if (id.empty()) return fail("the transfer id is empty");
  auto url = net::parse_url(req.url);
  if (!url) {
    auto r = fail("the URL does not parse: " + url.error().message());
    r.error = url.error();
    return r;
  }
  if (url->scheme != net::scheme::http && url->scheme != net::scheme::https)
    return fail("transfers speak http and https only", error::unsupported_scheme);
  if (req.file.empty()) return fail(k == kind::download ? "no destination file" : "no source file");
  std::error_code fec;
  auto path = std::filesystem::absolute(req.file, fec).lexically_normal();
  if (fec) return fail("bad file path: " + fec.message());
  if (!req.sha256.empty() && !is_sha256_hex(req.sha256)) return fail("--sha256 is not 64 hex digits");
  for (const auto& [name, value] : req.headers) {
    const auto bad = [](const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; };
    if (name.empty() || bad(name) || bad(value)) return fail("a request header has an empty name or a line break");
    // A download is stored byte for byte as served and resumed by byte ranges, which name
    // bytes of the encoded form: only identity can be asked for.
    if (k == kind::download && boost::beast::iequals(name, "Accept-Encoding") && !boost::beast::iequals(value, "identity"))
      return fail("the header 'Accept-Encoding: " + value +
                  "' is not supported: downloads are stored exactly as served and resumed by range, so tether "
                  "asks for identity (no content coding)");
  }
  rec.id = id;
  rec.kind = k;
  rec.url = req.url;
  rec.file = path.string();
  rec.headers = req.headers;
  rec.sha256_expected = req.sha256;
  rec.protocol = req.protocol;
  rec.chunk_size = req.chunk_size;
  rec.bandwidth_limit = req.bandwidth_limit;
  rec.earliest_start_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(req.earliest_start.time_since_epoch()).count();
  rec.checkpoint_bytes = m.opts.checkpoint_bytes;
  rec.created_ms = now_ms();
  if (k == kind::download) {
    if (!std::filesystem::is_directory(path.parent_path(), fec))
      return fail("the destination's directory " + path.parent_path().string() + " does not exist");
    if (std::filesystem::is_directory(path, fec)) return fail("the destination " + path.string() + " is a directory");
  } else {
    const auto src = identify_file(path);
    if (!src || !std::filesystem::is_regular_file(path, fec))
      return fail("the source " + path.string() + " is not a readable regular file");
    rec.source_size = src->size;
    rec.source_mtime_ns = src->mtime_ns;
    rec.length = rec.source_size;
    if (req.protocol == upload_protocol::tus && req.chunk_size == 0 && m.opts.upload_chunk_size == 0)
      return fail("the tus chunk size is zero");
  }
  return std::nullopt;
}

/// A finished transfer asked for again: back to unfinished, keeping what is provably good
/// when `keep` (restore re-verifies it), and taking the new call's headers, digest, limit and
/// start of its deadline.
void prepare_rerun(record& r, const record& fresh, bool keep) {
  r.result.reset();
  r.result_delivered = false;
  r.produced.reset();
  r.headers = fresh.headers;
  r.sha256_expected = fresh.sha256_expected;
  r.bandwidth_limit = fresh.bandwidth_limit;
  r.created_ms = fresh.created_ms;  // a new request: its deadline counts from now
  const bool source_changed = r.kind == kind::upload &&
                              (fresh.source_size != r.source_size || fresh.source_mtime_ns != r.source_mtime_ns);
  if (keep && !source_changed) return;
  r.offset = 0;
  r.digests.clear();
  r.upload_url.clear();
  r.upload_expires_ms = 0;
  if (r.kind == kind::upload) {
    r.source_size = fresh.source_size;
    r.source_mtime_ns = fresh.source_mtime_ns;
    r.length = fresh.length;
  } else {
    r.length.reset();
    r.etag.clear();
    r.last_modified.clear();
  }
}

}  // namespace

std::shared_ptr<manager_impl> open_manager(asio::any_io_executor ex, options opts) {
  const auto dir = opts.state_dir.string();
  auto fail = [&dir](error_code ec, const std::string& what) {
    throw boost::system::system_error(ec, "transfer state directory " + dir + ": " + what);
  };
  if (opts.state_dir.empty()) fail(make_error_code(error::invalid_argument), "not set");
  if (opts.max_concurrent == 0) fail(make_error_code(error::invalid_argument), "max_concurrent is 0");
  if (opts.checkpoint_bytes < (64u << 10) || opts.checkpoint_bytes % (64u << 10) != 0)
    fail(make_error_code(error::invalid_argument), "checkpoint_bytes must be a multiple of 64 KiB");
  if (opts.connections_per_download == 0 || opts.connections_per_download > 16)
    fail(make_error_code(error::invalid_argument), "connections_per_download must be 1 to 16");
  if (opts.max_connections_per_host == 0)
    fail(make_error_code(error::invalid_argument), "max_connections_per_host is 0");
  auto m = std::make_shared<manager_impl>();
  m->user_ex = std::move(ex);
  std::error_code sec;
  // A directory made here is private (records hold URLs and headers); an existing one keeps
  // the mode its owner gave it.
  if (std::filesystem::create_directories(opts.state_dir, sec))
    std::filesystem::permissions(opts.state_dir, std::filesystem::perms::owner_all, sec);
  if (sec) fail(error_code(sec.value(), boost::system::system_category()), "cannot create it");
  opts.state_dir = std::filesystem::absolute(opts.state_dir);
  m->opts = std::move(opts);
  auto ctx = net::detail::client_tls::make(m->opts.tls);
  if (!ctx) fail(ctx.error(), "TLS settings");
  m->tls = *ctx;
  m->pool.emplace(idle_limits{m->opts.max_idle_connections, m->opts.max_idle_per_origin, m->opts.idle_connection_timeout});
  m->st.emplace(m->opts.state_dir, m->opts.log);
  m->st->load([&m](record r) {
    auto j = std::make_shared<job>();
    j->rec = std::move(r);
    m->jobs[j->rec.id] = std::move(j);
  });
  m->work.emplace(m->ioc.get_executor());
  m->thread = std::thread([raw = m.get()] { raw->ioc.run(); });
  return m;
}

void start_transfer(const std::shared_ptr<manager_impl>& m, kind k, request req, std::string id, result_handler h) {
  asio::post(m->ioc, [m, k, req = std::move(req), id = std::move(id), h = std::move(h)]() mutable {
    auto reply = [&](result r) {
      auto ex = m->tracked_executor(h);
      manager_impl::post_result(std::move(h), ex, std::move(r));
    };
    if (m->stopping) return reply(invalid(id, k, "the transfer manager is shutting down", error::cancelled));
    record fresh;
    if (auto bad = validate(*m, k, req, id, fresh)) return reply(std::move(*bad));
    // The transfer becomes this process's (its lock), as it is on disk now.
    std::shared_ptr<job> j;
    file lock;
    std::string why;
    if (auto ec = m->claim(id, j, lock, why)) {
      auto r = invalid(id, k, why);
      r.error = ec;
      return reply(std::move(r));
    }
    attach_facts facts;
    if (j) {
      facts.existing = &j->rec;
      facts.active = j->running || j->queued;
      if (j->rec.kind == kind::download && j->rec.status == status::succeeded)
        facts.destination = identify_file(j->rec.file);
    }
    const auto d = decide_attach(fresh, facts);
    switch (d.action) {
      case attach_action::refuse: return reply(invalid(id, k, d.why, d.e));
      case attach_action::replay: {
        auto& r = j->rec;
        if (!r.result_delivered) {
          r.result_delivered = true;
          m->st->save(r);
        }
        return reply(*r.result);
      }
      case attach_action::create:
        j = std::make_shared<job>();
        j->rec = std::move(fresh);
        m->jobs[id] = j;
        break;
      case attach_action::rerun:
        m->opts.log(net::log_level::info, "transfer " + id + ": asked again after it ended (" +
                                              to_string(j->rec.status) + "); running it again");
        prepare_rerun(j->rec, fresh, d.keep_progress);
        break;
      case attach_action::resume:
        if (j->rec.status == status::paused) j->rec.earliest_start_ms = 0;
        break;
      case attach_action::join: break;
    }
    if (lock) j->lock = std::move(lock);  // held while queued or running here
    m->add_waiter(*j, std::move(h));
    m->enqueue(j);  // a new record is written before anything moves; a running job is joined
  });
}

void start_resume_all(const std::shared_ptr<manager_impl>& m, results_handler h) {
  asio::post(m->ioc, [m, h = std::move(h)]() mutable {
    struct gather {
      std::vector<result> results;
      std::size_t left = 0;
      std::optional<results_handler> handler;
      asio::any_completion_executor ex;
    };
    auto g = std::make_shared<gather>();
    g->ex = m->tracked_executor(h);
    g->handler.emplace(std::move(h));
    auto done = [g] { manager_impl::post_result(std::move(*g->handler), g->ex, std::move(g->results)); };
    std::vector<std::shared_ptr<job>> todo;
    std::vector<std::string> ids;
    for (auto& [id, j] : m->jobs) ids.push_back(id);
    for (const auto& id : ids) {
      std::shared_ptr<job> j;
      file lock;
      std::string why;
      if (auto ec = m->claim(id, j, lock, why)) {
        // Another process runs it (its results are that process's), or its record went bad.
        std::string line = "resume_all leaves ";
        line += id;
        line += " alone: ";
        line += why;
        m->opts.log(net::log_level::info, line);
        continue;
      }
      if (!j) continue;  // removed by another process
      if (lock) j->lock = std::move(lock);
      if (j->running || j->queued) continue;  // already on its way here
      if (j->rec.result) {
        if (!j->rec.result_delivered) {
          j->rec.result_delivered = true;
          m->st->save(j->rec);
          // A cancel is the user's own decision, already answered where it was made: it is not
          // a result anyone waits for, and never comes back as a failure.
          if (j->rec.result->error != error::cancelled) g->results.push_back(*j->rec.result);
        }
        j->lock.close();
        continue;
      }
      if (j->rec.status != status::paused)
        todo.push_back(j);
      else
        j->lock.close();
    }
    g->left = todo.size();
    if (todo.empty()) return done();
    for (auto& j : todo) {
      result_handler one = [g, done](result r) {
        g->results.push_back(std::move(r));
        if (--g->left == 0) done();
      };
      // The gathering handler runs on the manager's thread (it has no executor of its own).
      j->waiters.push_back(waiter{std::move(one), asio::any_completion_executor(m->ioc.get_executor())});
      m->enqueue(j);
    }
  });
}

std::vector<info> list(manager_impl& m) { return m.st->list(); }

namespace {
error_code stop_job(manager_impl& m, const std::string& id, stop_kind how) {
  return on_manager_thread(m, [&]() -> error_code {
    std::shared_ptr<job> j;
    file lock;
    std::string why;
    if (auto ec = m.claim(id, j, lock, why)) {
      m.opts.log(net::log_level::warn, "cannot stop " + id + ": " + why);
      return ec;
    }
    if (!j) return make_error_code(error::not_found);
    if (lock) j->lock = std::move(lock);
    if (j->running) {
      j->stop = how;
      if (j->interrupt) j->interrupt();
      return {};
    }
    // Not running: settle it here.
    if (j->queued) {
      m.pending.erase(std::remove(m.pending.begin(), m.pending.end(), j), m.pending.end());
      j->queued = false;
    }
    if (how == stop_kind::remove) {
      m.st->forget(j->rec);
      j->stop = how;
      m.finish(j, result_of(j->rec));  // tells any waiter
      m.jobs.erase(id);
      return {};
    }
    if (j->rec.result) {
      j->lock.close();
      return how == stop_kind::pause ? make_error_code(error::invalid_argument) : error_code{};
    }
    j->stop = how;
    const auto& r = j->rec;
    if (how == stop_kind::cancel && r.kind == kind::upload && r.protocol == upload_protocol::tus &&
        !r.upload_url.empty() && !m.stopping) {
      // The server holds a partial upload: terminate it there too, then settle.
      j->running = true;
      ++m.running;
      asio::co_spawn(m.ioc, m.run_job(j), asio::detached);
      return {};
    }
    m.finish(j, result_of(j->rec));
    return {};
  });
}
}  // namespace

error_code cancel(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::cancel); }
error_code pause(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::pause); }
error_code remove(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::remove); }

std::size_t prune(manager_impl& m, std::chrono::system_clock::duration older_than) {
  return on_manager_thread(m, [&] {
    std::size_t removed = 0;
    const auto cutoff = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(older_than).count();
    std::vector<std::string> gone;
    for (auto& [id, j] : m.jobs) {
      const auto& r = j->rec;
      const bool ended = r.status == status::succeeded || r.status == status::failed || r.status == status::cancelled;
      if (!ended || j->running || j->queued || r.updated_ms > cutoff) continue;
      error_code ec;
      std::string why;
      auto lock = m.st->claim(id, ec, why);  // not while another process runs it again
      if (ec) continue;
      m.st->forget(r);
      gone.push_back(id);
      ++removed;
    }
    for (auto& id : gone) m.jobs.erase(id);
    std::set<std::string> live;
    for (auto& [id, j] : m.jobs) live.insert(file_stem(id));
    return removed + m.st->prune_files(live, std::filesystem::file_time_type::clock::now() - older_than);
  });
}

void shutdown(manager_impl& m) {
  if (!m.thread.joinable()) return;
  asio::post(m.ioc, [&m] {
    m.stopping = true;
    for (auto& j : m.pending) {
      j->queued = false;
      j->stop = stop_kind::shutdown;
      m.finish(j, result_of(j->rec));
    }
    m.pending.clear();
    for (auto& [id, j] : m.jobs)
      if (j->running) {
        j->stop = stop_kind::shutdown;
        if (j->interrupt) j->interrupt();
      }
    // Idle connections go now: one through an https proxy has a relay running on this thread.
    m.pool->close_all();
    if (m.running == 0) m.work.reset();
  });
  m.thread.join();
  m.syncer.join();
}

asio::any_io_executor get_executor(const manager_impl& m) noexcept { return m.user_ex; }

}  // namespace tether::transfer::detail
