// tether/transfer/impl/scheduler.ipp: the manager's queue: runs jobs up to max_concurrent,
// each in a run_context of its own, and settles their ends (detail/lifecycle.hpp).
#pragma once

#include <tether/transfer/detail/download_run.hpp>
#include <tether/transfer/detail/manager_impl.hpp>
#include <tether/transfer/detail/upload_run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace tether::transfer::detail {

void manager_impl::deliver(job& j, const result& res) {
  for (auto& w : j.waiters) post_result(std::move(w.handler), w.work, res);
  j.waiters.clear();
}

void manager_impl::add_waiter(job& j, result_handler h) {
  auto ex = tracked_executor(h);
  j.waiters.push_back(waiter{std::move(h), std::move(ex)});
}

void manager_impl::finish(const std::shared_ptr<job>& j, result res) {
  auto& r = j->rec;
  const auto s = settle(j->stop, res);
  if (s.outcome) {
    res.outcome = *s.outcome;
    res.error = s.error;
    res.message = s.message;
  }
  r.status = s.status;
  if (s.final) {
    if (s.discard_partial) {
      st->discard_partial(r);
      if (r.kind == kind::download) {
        r.offset = 0;
        r.digests.clear();
      }
    }
    r.result = res;
    r.result_delivered = !j->waiters.empty();
  }
  if (j->stop == stop_kind::remove) {
    st->forget(r);
    jobs.erase(r.id);
  } else if (auto ec = st->save(r)) {
    opts.log(net::log_level::error, "cannot write the record of transfer " + r.id + ": " + describe_failure(ec));
  }
  if (opts.metrics) {  // counted once the record says so
    static constexpr std::string_view labels[] = {"outcome=\"success\"", "outcome=\"rejected\"",
                                                  "outcome=\"retry_later\"", "outcome=\"failed\""};
    const auto o = static_cast<std::size_t>(res.outcome);
    opts.metrics->count(net::metric::transfers_finished, o < std::size(labels) ? labels[o] : std::string_view{}, 1);
  }
  deliver(*j, res);
  j->stop = stop_kind::none;
  if (!j->running && !j->queued) j->lock.close();  // another process may take it now
}

error_code manager_impl::claim(const std::string& id, std::shared_ptr<job>& j, file& lock, std::string& why) {
  auto it = jobs.find(id);
  j = it == jobs.end() ? nullptr : it->second;
  if (j && j->lock) return {};  // ours already (queued or running here)
  error_code ec;
  lock = st->claim(id, ec, why);
  if (ec) return ec;
  auto disk = st->reread(id, ec, why);
  if (ec) return ec;
  if (!disk) {
    if (j) jobs.erase(id);  // removed meanwhile by another process
    j = nullptr;
    return {};
  }
  if (!j) {
    j = std::make_shared<job>();
    jobs[id] = j;
  }
  if (disk->status == status::running || disk->status == status::queued) disk->status = status::waiting;
  j->rec = std::move(*disk);
  return {};
}

void manager_impl::enqueue(const std::shared_ptr<job>& j) {
  if (j->running || j->queued) return;
  j->queued = true;
  j->rec.status = status::queued;
  if (auto ec = st->save(j->rec)) {
    j->queued = false;
    auto res = result_of(j->rec);
    res.error = ec;
    res.message = "cannot write the state record: " + describe_failure(ec);
    deliver(*j, res);
    return;
  }
  pending.push_back(j);
  pump();
}

void manager_impl::pump() {
  while (!stopping && running < opts.max_concurrent && !pending.empty()) {
    auto j = pending.front();
    pending.pop_front();
    j->queued = false;
    j->running = true;
    ++running;
    if (opts.metrics) {
      opts.metrics->count(net::metric::transfers_started, kind_label(j->rec.kind), 1);
      opts.metrics->gauge(net::metric::transfers_active, {}, static_cast<double>(running));
    }
    asio::co_spawn(ioc, run_job(j), asio::detached);
  }
}

asio::awaitable<void> manager_impl::run_job(std::shared_ptr<job> j) {
  auto self = shared_from_this();
  j->rec.status = status::running;
  result res;
  if (auto ec = st->save(j->rec)) {
    res = result_of(j->rec);
    res.error = ec;
    res.message = "cannot write the state record: " + describe_failure(ec);
  } else {
    try {
      run_context cx(services(), j);
      if (j->stop == stop_kind::cancel) {  // a tus upload cancelled while idle (see stop_job)
        upload_run up(cx);
        co_await up.terminate();
      } else if (j->rec.earliest_start_ms > now_ms()) {
        const auto wait = std::chrono::milliseconds{j->rec.earliest_start_ms - now_ms()};
        co_await cx.wait_until(steady::now() + wait);
      }
      if (j->stop != stop_kind::none) {
        res = cx.make_result();
      } else if (j->rec.kind == kind::download) {  // not `?:` around co_await: scripts/check_coawait.py
        download_run down(cx);
        res = co_await down.run();
      } else {
        upload_run up(cx);
        res = co_await up.run();
      }
    } catch (const std::exception& e) {
      res = result_of(j->rec);
      res.outcome = outcome::failed;
      res.error = make_error_code(error::protocol_error);
      res.message = std::string("internal error: ") + e.what();
    }
  }
  j->running = false;
  j->interrupt = nullptr;
  --running;
  if (opts.metrics) opts.metrics->gauge(net::metric::transfers_active, {}, static_cast<double>(running));
  finish(j, std::move(res));
  if (stopping) pool->close_all();  // a run stopped by the shutdown keeps nothing
  if (stopping && running == 0) work.reset();
  pump();
}

}  // namespace tether::transfer::detail
