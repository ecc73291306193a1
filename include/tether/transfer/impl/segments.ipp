// tether/transfer/impl/segments.ipp: a segmented download's connections (segment requests,
// keep-alive, work stealing, each connection retrying on its own) and its background
// checkpoints (a chunk's digest is recorded only after the data is synced).
#pragma once

#include <tether/transfer/detail/segmented_run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <random>

namespace tether::transfer::detail {

/// Complete chunks waiting for their sync, and the sync in flight. Shared with the syncer's
/// callbacks, which may outlive the run: the epoch tells them whether they still speak for it.
struct segment_sync {
  file fd;                            ///< a duplicate of the partial file's descriptor
  /// Complete chunks not yet in a sync, each with its digest (empty: to be read back).
  std::vector<std::pair<std::uint64_t, std::string>> pending;
  bool busy = false;
  std::uint64_t epoch = 0;
  error_code error;
  std::string error_text;
  std::function<void()> wake;  ///< the run's waiters for a sync
};

namespace {

/// Per-connection read size, as one connection's (io_chunk): on loopback, 256 KiB reads cost
/// a fifth more system time per GiB than 1 MiB reads. Allocated when the connection opens
/// (16 connections: 16 MiB).
constexpr std::size_t segment_read = 1u << 20;

void sync_segments(sync_target t, const std::shared_ptr<segment_sync>& st) {
  st->busy = true;
  auto batch = std::move(st->pending);
  st->pending.clear();
  const auto chunk = t.jp->rec.checkpoint_bytes;
  const auto length = t.jp->rec.length.value_or(0);
  const auto alg = t.jp->rec.chunk_digest;
  auto* syncer = t.syncer;
  asio::post(*syncer, [t = std::move(t), st, batch = std::move(batch), chunk, length, alg, epoch = st->epoch]() mutable {
    error_code ec;
    timed_sync(t, st->fd, ec);
    for (auto& [index, digest] : batch) read_back(st->fd, index, chunk, length, alg, digest, ec);
    std::string text = ec ? describe_failure(ec) : std::string();
    auto* ioc = t.ioc;
    asio::post(*ioc, [t = std::move(t), st, batch = std::move(batch), ec, epoch, chunk,
                      length, text = std::move(text)]() mutable {
      st->busy = false;
      if (epoch == st->epoch) {  // else the run ended or the data was reset: it speaks for nothing
        auto& r = t.jp->rec;
        if (ec) {
          st->error = ec;
          st->error_text = std::move(text);
        } else {
          for (auto& [index, digest] : batch) {
            auto& slot = r.chunks.at(static_cast<std::size_t>(index));
            if (!slot.empty()) continue;
            slot = std::move(digest);
            const auto from = index * chunk;
            r.offset += std::min(from + chunk, length) - from;
          }
          if (auto sec = t.st->save(r, true)) {
            st->error = sec;
            st->error_text = describe_failure(sec);
          }
        }
        if (!st->pending.empty() && !st->error) sync_segments(t, st);
      }
      if (st->wake) st->wake();
    });
  });
}

}  // namespace

segmented_run::segmented_run(run_context& cx, file& part)
    : cx_(cx),
      part_(part),
      sync_(std::make_shared<segment_sync>()),
      hashes_(cx.r.chunk_digest, cx.r.checkpoint_bytes, cx.r.length) {}

segmented_run::~segmented_run() {  // syncs still in flight no longer speak for this run
  ++sync_->epoch;
  sync_->wake = nullptr;
  cx_.j.interrupt = nullptr;
}

asio::awaitable<attempt_end> segmented_run::run(const net::endpoint_url& url, bool origin) {
  auto& r = cx_.r;
  attempt_end end;
  url_ = url;
  origin_ = origin;
  host_ = url.host + ":" + std::to_string(url.port);
  const auto length = r.length.value_or(0);
  const auto chunk = r.checkpoint_bytes;
  error_code ec;
  sync_->fd = part_.duplicate(ec);
  if (ec) {
    end.ec = ec;
    end.local = true;
    end.message = "cannot duplicate the partial file's descriptor: " + describe_failure(ec);
    ending_ = segment_ending::failed;
    co_return end;
  }
  written_ = r.offset;
  for (const auto& c : r.chunks) chunks_left_ += c.empty() ? 1u : 0u;
  const segment_limits limits{cx_.opts.connections_per_download, cx_.opts.min_segment_bytes};
  const auto segments = initial_segments(missing_spans(r.chunks, chunk, length), chunk, limits);
  queue_.assign(segments.begin(), segments.end());
  workers_.resize(std::min<std::size_t>(limits.connections, std::max<std::size_t>(segments.size(), 1)));
  cx_.log(net::log_level::info, std::to_string(chunks_left_) + " of " + std::to_string(r.chunks.size()) +
                                    " chunks to fetch over up to " + std::to_string(workers_.size()) + " connections");
  auto wake_all = [this] {
    for (auto& w : workers_)
      if (w.timer) w.timer->cancel();
  };
  sync_->wake = wake_all;
  cx_.j.interrupt = [this, wake_all] {
    for (auto& w : workers_)
      if (w.interrupt) w.interrupt();
    wake_all();
  };
  // One connection first, the others when it shows the network is the limit (judge_ramp).
  ramped_ = !cx_.opts.ramp_connections || workers_.size() == 1;
  for (std::size_t i = 0; i < (ramped_ ? workers_.size() : 1); ++i) spawn(i);
  while (live_ > 0) {
    asio::steady_timer t(cx_.ioc, steady::time_point::max());
    all_done_ = &t;
    co_await t.async_wait(nothrow);
    all_done_ = nullptr;
  }
  cx_.j.interrupt = nullptr;
  // Chunks still waiting for their sync are finalize's (complete) or lost with the run: their
  // bytes are fetched again, as after a crash.
  if (cx_.stopped()) {
    ending_ = segment_ending::stopped;
    co_return end;
  }
  if (ending_ != segment_ending::complete) {
    end_.progressed = end_.progressed || progressed_;
    co_return end_;
  }
  if (sync_->error) {
    ending_ = segment_ending::failed;
    end.ec = sync_->error;
    end.local = true;
    end.message = "syncing the partial data: " + sync_->error_text;
    co_return end;
  }
  if (chunks_left_ == 0) {
    end.complete = true;
    end.status = 206;
    co_return end;
  }
  ending_ = segment_ending::failed;
  last_failure_.progressed = progressed_;
  co_return last_failure_;
}

void segmented_run::spawn(std::size_t i) {
  ++live_;
  workers_[i].buf.resize(segment_read);
  asio::co_spawn(cx_.ioc, work(i), [this](const std::exception_ptr& e) {
    if (e) {
      attempt_end why;
      why.ec = make_error_code(error::protocol_error);
      why.message = "a segment's connection ended unexpectedly";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        why.message += std::string(": ") + x.what();
      } catch (...) {
      }
      halt(segment_ending::failed, why);
    }
    if (--live_ == 0 && all_done_) all_done_->cancel();
  });
}

void segmented_run::waited(steady::time_point asked, std::uint64_t got) {
  const auto now = steady::now();
  if (sample_.elapsed == steady::duration::zero() && sample_.bytes == 0) window_ = asked;
  sample_.waiting += now - asked;
  sample_.bytes += got;
  sample_.elapsed = now - window_;
  switch (judge_ramp(sample_)) {
    case ramp_step::sample: return;
    case ramp_step::again: sample_ = {}; return;
    case ramp_step::open_all: break;
  }
  ramped_ = true;
  cx_.log(net::log_level::info, "the first connection waited for data " +
                                    std::to_string(sample_.waiting.count() * 100 / std::max<std::int64_t>(sample_.elapsed.count(), 1)) +
                                    "% of the time: opening " + std::to_string(workers_.size() - 1) + " more");
  for (std::size_t k = 1; k < workers_.size() && !halted(); ++k) spawn(k);
}

void segmented_run::halt(segment_ending how, attempt_end why) {
  if (ending_ != segment_ending::complete) return;  // the first reason stands
  ending_ = how;
  end_ = std::move(why);
  for (auto& w : workers_) {
    if (w.interrupt) w.interrupt();
    if (w.timer) w.timer->cancel();
  }
}

asio::awaitable<bool> segmented_run::wait(std::size_t i, steady::time_point until) {
  if (until > steady::now() && !halted()) {
    asio::steady_timer t(cx_.ioc, until);
    workers_[i].timer = &t;
    co_await t.async_wait(nothrow);
    workers_[i].timer = nullptr;
  }
  co_return !halted();
}

bool segmented_run::take(std::size_t i) {
  auto& w = workers_[i];
  if (w.pos < w.end) return true;
  if (!queue_.empty()) {
    const auto s = queue_.front();
    queue_.pop_front();
    w.pos = s.begin;
    w.end = s.end;
    w.cut = false;
    return true;
  }
  // Work stealing: half of the largest segment another connection still has.
  worker* victim = nullptr;
  for (auto& o : workers_)
    if (&o != &w && o.pos < o.end && (!victim || o.end - o.pos > victim->end - victim->pos)) victim = &o;
  if (!victim) return false;
  const auto at = split_point({victim->pos, victim->end}, cx_.r.checkpoint_bytes, cx_.opts.min_segment_bytes);
  if (!at) return false;
  w.pos = *at;
  w.end = victim->end;
  w.cut = false;
  victim->end = *at;
  victim->cut = true;
  return true;
}

void segmented_run::give_back(std::size_t i) {
  auto& w = workers_[i];
  if (w.pos < w.end) queue_.push_front({w.pos, w.end});
  w.pos = w.end = 0;
}

error_code segmented_run::write(std::size_t i, const char* data, std::size_t n) {
  auto& w = workers_[i];
  auto& r = cx_.r;
  if (sync_->error) return sync_->error;
  error_code ec;
  write_all(part_, data, n, w.pos, ec);
  if (ec) return ec;
  const auto at = w.pos;
  w.pos += n;
  written_ += n;
  r.bytes_received += n;
  cx_.moved(n);
  progressed_ = true;
  // Chunks whose last byte this write wrote are complete (segment_plan.hpp's invariant).
  hashes_.wrote(at, data, n, [this](std::uint64_t index, std::string digest) { chunk_written(index, std::move(digest)); });
  return {};
}

void segmented_run::chunk_written(std::uint64_t index, std::string digest) {
  if (chunks_left_ > 0) --chunks_left_;
  const auto chunk = cx_.r.checkpoint_bytes;
  start_writeback(part_, index * chunk, chunk);
  sync_->pending.emplace_back(index, std::move(digest));
  if (!sync_->busy) sync_segments(sync_target{&cx_.st, &cx_.ioc, &cx_.syncer, cx_.jp, cx_.opts.metrics.get()}, sync_);
}

asio::awaitable<void> segmented_run::work(std::size_t i) {
  auto& w = workers_[i];
  retry_fsm fsm(cx_.opts.retry, cx_.opts.max_retry_after, cx_.deadline(), std::random_device{}());
  // Every connection but a download's first counts against the per-host limit.
  bool place = false;
  for (;;) {
    if (halted() || !take(i)) break;
    if (i > 0 && !place) {
      place = cx_.hosts.take(host_, cx_.opts.max_connections_per_host);
      if (!place) {
        give_back(i);
        break;
      }
    }
    if (auto stop = fsm.before_attempt(steady::now())) {
      last_failure_.ec = stop->error;
      last_failure_.message = stop->message;
      break;
    }
    auto use = [this, i](auto& stream, beast::tcp_stream& tcp) { return serve(i, stream, tcp); };
    auto end = co_await with_connection(cx_, url_, w.interrupt, use);
    w.interrupt = nullptr;
    if (halted()) break;
    if (!end.ec) continue;  // the connection ended cleanly (split, or closed by the server): a new one
    give_back(i);
    if (end.local) {
      halt(segment_ending::failed, end);
      break;
    }
    const auto step = fsm.next(end, steady::now(), std::chrono::system_clock::now(), cx_.r.attempts);
    cx_.log(net::log_level::info, "segment connection " + std::to_string(i) + ": " + end.message);
    last_failure_ = end;
    if (step.kind != retry_step::wait) {
      if (!step.message.empty()) last_failure_.message = step.message;
      last_failure_.ec = step.error ? step.error : end.ec;
      break;
    }
    cx_.notify_retry(end, step.delay);
    if (!co_await wait(i, steady::now() + step.delay)) break;
    ++cx_.r.attempts;  // a connection's own retry is one more attempt of the transfer
  }
  give_back(i);
  if (place) cx_.hosts.give_back(host_);
}

template <class Stream>
asio::awaitable<attempt_end> segmented_run::serve(std::size_t i, Stream& stream, beast::tcp_stream& tcp) {
  auto& r = cx_.r;
  auto& w = workers_[i];
  attempt_end end;
  const auto lag = std::max<std::uint64_t>(cx_.opts.max_unsynced_bytes,
                                           (workers_.size() + 1) * r.checkpoint_bytes);
  // One segment after another on this connection, while the server keeps it open.
  while (!halted() && take(i)) {
    end.reusable = false;
    const span asked{w.pos, w.end};
    const std::string where = "GET " + url_.redacted() + " bytes " + std::to_string(asked.begin) + "-" +
                              std::to_string(asked.end - 1);
    http::request<http::empty_body> req{http::verb::get, url_.target, 11};
    add_headers(req, url_, r, origin_);
    req.set(http::field::accept_encoding, "identity");
    req.set(http::field::range, "bytes=" + std::to_string(asked.begin) + "-" + std::to_string(asked.end - 1));
    const auto validator = !r.etag.empty() ? r.etag : r.last_modified;
    if (!validator.empty()) req.set(http::field::if_range, validator);
    arm(cx_, tcp);
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
    if (wec) {
      end.ec = io_error(cx_, wec);
      end.message = where + ": " + end.ec.message();
      co_return end;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(cx_.opts.max_header_bytes);
    parser.body_limit(boost::none);
    arm(cx_, tcp);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, nothrow);
    if (hec) {
      end.ec = io_error(cx_, hec);
      if (end.ec == error::short_body) end.ec = asio::error::connection_reset;
      end.message = where + ": " + describe(hec, end.ec);
      co_return end;
    }
    auto& res = parser.get();
    response_facts facts;
    facts.status = end.status = res.result_int();
    facts.reason = std::string(res.reason());
    facts.etag = field(res, http::field::etag);
    facts.last_modified = field(res, http::field::last_modified);
    facts.content_encoding = field(res, http::field::content_encoding);
    facts.content_range = field(res, http::field::content_range);
    facts.retry_after = field(res, http::field::retry_after);
    if (auto n = parser.content_length()) facts.content_length = *n;
    auto v = judge_segment(r, asked, facts, std::chrono::system_clock::now());
    if (v.step == segment_step::body && parser.chunked())
      v = {segment_step::one_connection, make_error_code(error::range_mismatch), "a chunked 206", {}, 0};
    end.drop = true;  // from here on, leaving early leaves response data unread
    switch (v.step) {
      case segment_step::body: break;
      case segment_step::fail:
        end.ec = v.ec;
        end.retry_after = v.retry_after;
        end.message = where + ": " + v.why;
        co_return end;
      case segment_step::fatal:
        end.ec = v.ec;
        end.message = where + ": " + v.why;
        halt(segment_ending::failed, end);
        co_return end;
      case segment_step::other_version:
      case segment_step::one_connection: {
        attempt_end why;
        why.ec = make_error_code(error::range_mismatch);
        why.status = end.status;
        why.message = where + ": " + v.why;
        halt(v.step == segment_step::other_version ? segment_ending::other_version : segment_ending::one_connection,
             why);
        co_return end;
      }
    }
    // The body: bytes [asked.begin, v.last], read straight into the worker's buffer. The
    // segment may shrink meanwhile (another connection took its tail): then the rest of this
    // response is dropped with the connection.
    auto body_left = v.last + 1 - asked.begin;
    bool leftover = buffer.size() > 0;
    while (body_left > 0) {
      if (w.pos >= w.end || halted()) co_return end;  // split (or ending): drop the connection
      std::size_t got = 0;
      error_code rec;
      if (leftover) {
        got = static_cast<std::size_t>(std::min<std::uint64_t>({buffer.size(), w.buf.size(), body_left}));
        asio::buffer_copy(asio::buffer(w.buf.data(), got), buffer.data());
        buffer.consume(got);
        leftover = buffer.size() > 0 && body_left > got;
      } else {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(w.buf.size(), body_left));
        if (const auto limit = cx_.pace_limit()) want = std::min<std::size_t>(want, std::max<std::uint64_t>(limit / 20, 4096));
        arm(cx_, tcp);
        const auto asked_at = steady::now();
        auto [e, n] = co_await stream.async_read_some(asio::buffer(w.buf.data(), want), nothrow);
        rec = e;
        got = n;
        if (!ramped_ && !rec) waited(asked_at, got);
      }
      body_left -= got;
      // Only what belongs to the segment as it is now is written.
      const auto keep = static_cast<std::size_t>(std::min<std::uint64_t>(got, w.end - w.pos));
      if (keep > 0) {
        if (auto aec = write(i, w.buf.data(), keep)) {
          end.ec = aec;
          end.local = true;
          end.message = "writing the partial data: " + (aec == sync_->error ? sync_->error_text : describe_failure(aec));
          co_return end;
        }
        end.progressed = true;
        cx_.report(written_);
      }
      if (rec) {
        const bool closed = rec == asio::error::eof || rec == asio::ssl::error::stream_truncated;
        end.ec = io_error(cx_, closed ? make_error_code(error::short_body) : rec);
        end.message = where + ": " + describe(rec, end.ec) + " at byte " + std::to_string(w.pos);
        co_return end;
      }
      if (cx_.pace_limit() && !co_await wait(i, cx_.pace_until(got))) co_return end;
      if (steady::now() >= cx_.deadline()) {
        end.ec = make_error_code(error::deadline_exceeded);
        end.message = where + ": the transfer did not finish within its deadline";
        co_return end;
      }
      // Bounded loss: never more than `lag` ahead of what is durable; wait for the syncer.
      while (sync_->busy && written_ - r.offset > lag && !halted()) co_await wait(i, steady::time_point::max());
    }
    end.drop = false;
    if (!parser.keep_alive() || w.cut) {
      w.cut = false;
      co_return end;
    }
    end.reusable = buffer.size() == 0;
  }
  co_return end;
}

}  // namespace tether::transfer::detail
