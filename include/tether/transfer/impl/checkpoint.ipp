// tether/transfer/impl/checkpoint.ipp: a download's partial file: restore and re-verify,
// append, background checkpoints (data synced before the offset is recorded), finalize.
#pragma once

#include <tether/net/detail/ascii.hpp>
#include <tether/transfer/detail/download_run.hpp>
#include <tether/transfer/detail/segmented_run.hpp>

#include <boost/asio/post.hpp>

#include <fcntl.h>

namespace tether::transfer::detail {

namespace {
bool equal_hex(std::string_view a, std::string_view b) noexcept { return net::detail::ascii_iequal(a, b); }

/// What a background sync needs, all of it outliving the run (the manager's members and the
/// job): a sync that completes after its run ended finds its epoch stale and does nothing.
struct sync_target {
  store* st;
  asio::io_context* ioc;
  asio::thread_pool* syncer;
  std::shared_ptr<job> jp;
  net::metrics_sink* metrics = nullptr;  ///< the manager's (it outlives its runs' syncs)
};

void sync_in_background(sync_target t, const std::shared_ptr<sync_state>& st, std::uint64_t offset);

/// fdatasync of the partial data, its latency observed as the transfer_fsync metric.
void timed_sync(const sync_target& t, const file& fd, error_code& ec) {
  const auto began = std::chrono::steady_clock::now();
  sync_data(fd, ec);
  if (t.metrics)
    t.metrics->observe(net::metric::transfer_fsync, {},
                       std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - began));
}

/// A chunk's digest, when it was not hashed as written: read back from the file (chunk
/// `index`, ending at the content's `end` when that comes first).
void read_back(const file& f, std::uint64_t index, std::uint64_t chunk, std::uint64_t end, hash_algorithm alg,
               std::string& digest, error_code& ec) {
  if (!digest.empty() || ec) return;
  const auto from = index * chunk;
  auto one = chunk_digests(f, from, std::min(from + chunk, end), chunk, ec, alg);
  if (!ec && !one.empty()) digest = std::move(one.front());
}

/// A sync of chunks [first, first + digests.size()) is done: record them (their digests
/// completed by the syncer) and the new offset.
void synced(sync_target t, const std::shared_ptr<sync_state>& st, std::uint64_t offset, std::uint64_t epoch,
            error_code ec, std::string text, std::size_t first, std::vector<std::string> digests) {
  st->busy = false;  // syncs run one at a time, in order: this was the one in flight
  if (st->waiter) st->waiter->cancel();
  auto& r = t.jp->rec;
  if (epoch == st->epoch) {  // else the data was reset or the run ended: it speaks for nothing
    if (ec) {
      st->error = ec;
      st->error_text = std::move(text);
      return;
    }
    const auto upto = first + digests.size();
    if (st->digests.size() < upto) st->digests.resize(upto);
    std::move(digests.begin(), digests.end(), st->digests.begin() + static_cast<std::ptrdiff_t>(first));
    st->synced = upto;
    if (offset > r.offset) {
      r.offset = offset;
      r.digests.assign(st->digests.begin(), st->digests.begin() + static_cast<std::ptrdiff_t>(upto));
      if (auto sec = t.st->save(r, true)) {
        st->error = sec;
        st->error_text = describe_failure(sec);
      }
    }
  }
  if (st->next > 0 && !st->error) {
    const auto next = st->next;
    st->next = 0;
    sync_in_background(std::move(t), st, next);
  }
}

/// Syncs the partial file up to `offset` (a chunk boundary), on the syncer thread (the second
/// core), while the download goes on; chunks not hashed as written are digested there too.
void sync_in_background(sync_target t, const std::shared_ptr<sync_state>& st, std::uint64_t offset) {
  st->busy = true;
  const auto chunk = t.jp->rec.checkpoint_bytes;
  const auto alg = t.jp->rec.chunk_digest;
  const auto first = st->synced;
  const auto upto = static_cast<std::size_t>(offset / chunk);
  std::vector<std::string> digests(upto > first ? upto - first : 0);
  for (std::size_t k = 0; k < digests.size() && first + k < st->digests.size(); ++k) digests[k] = st->digests[first + k];
  auto* syncer = t.syncer;
  asio::post(*syncer, [t = std::move(t), st, offset, first, chunk, alg, digests = std::move(digests), epoch = st->epoch,
                       fd = &st->fd]() mutable {
    error_code ec;
    timed_sync(t, *fd, ec);
    for (std::size_t k = 0; k < digests.size(); ++k) read_back(*fd, first + k, chunk, offset, alg, digests[k], ec);
    std::string text = ec ? describe_failure(ec) : std::string();
    auto* ioc = t.ioc;
    asio::post(*ioc, [t = std::move(t), st, offset, epoch, ec, text = std::move(text), first,
                      digests = std::move(digests)]() mutable {
      synced(std::move(t), st, offset, epoch, ec, std::move(text), first, std::move(digests));
    });
  });
}
}  // namespace

download_run::download_run(run_context& cx)
    : cx_(cx), hashes_(cx.r.chunk_digest, cx.r.checkpoint_bytes, std::nullopt) {
  want_whole_ = !cx.r.sha256_expected.empty() || cx.opts.report_sha256;
}

void download_run::reset_hashes() {
  hashes_ = chunk_hashes(cx_.r.chunk_digest, cx_.r.checkpoint_bytes, std::nullopt);
}

download_run::~download_run() {  // syncs still in flight no longer speak for this run
  ++sync_->epoch;
  sync_->next = 0;
}

std::string download_run::sync_failure(const error_code& ec) const {
  if (ec == sync_->error && !sync_->error_text.empty()) return sync_->error_text;
  return describe_failure(ec);
}

void download_run::start_sync(run_context& cx, const std::shared_ptr<sync_state>& st, std::uint64_t offset) {
  sync_in_background(sync_target{&cx.st, &cx.ioc, &cx.syncer, cx.jp, cx.opts.metrics.get()}, st, offset);
}

void download_run::restart_from_zero(bool count) {
  auto& r = cx_.r;
  ++sync_->epoch;
  sync_->digests.clear();
  sync_->synced = 0;
  sync_->next = 0;
  reset_hashes();
  // Truncation failing is reported by the next write; state stays consistent because the
  // record is reset before any new byte is recorded.
  error_code ig;
  truncate_file(part_, 0, ig);
  written_ = 0;
  whole_ = sha256{};
  r.offset = 0;
  r.digests.clear();
  r.chunks.clear();
  r.etag.clear();
  r.last_modified.clear();
  r.content_encoding.clear();
  r.length.reset();
  if (count) ++r.restarts;
}

error_code download_run::hash_prefix(std::uint64_t upto) {
  whole_ = sha256{};
  error_code ec;
  for (std::uint64_t off = 0; want_whole_ && off < upto;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), upto - off));
    const auto n = read_some(part_, buf_.data(), want, off, ec);
    if (ec) return ec;
    if (n == 0) return make_error_code(error::short_body);
    whole_.update(buf_.data(), n);
    off += n;
  }
  return {};
}

error_code download_run::restore() {
  auto& r = cx_.r;
  error_code ec;
  // The partial data becomes the user's file: created as curl does, 0666 under the umask
  // (while partial it lies in the state directory).
  part_ = open_file(cx_.part_path(), O_RDWR | O_CREAT, ec, 0666);
  if (ec) return ec;
  if (!r.chunks.empty()) return restore_segments();
  // What lies past the checkpoint was never recorded as durable: cut it off.
  if (auto id = identify_file(part_); !id || id->size != r.offset) {
    truncate_file(part_, r.offset, ec);
    if (ec) return ec;
  }
  const auto chunk = r.checkpoint_bytes;
  std::uint64_t verified = 0;
  for (std::size_t i = 0; i < r.digests.size(); ++i) {
    const auto begin = i * chunk;
    const auto end = std::min<std::uint64_t>(begin + chunk, r.offset);
    hasher h(r.chunk_digest);
    std::optional<sha256> whole;  // the whole-file hash may only take this chunk if it verifies
    if (want_whole_) whole.emplace(whole_);
    for (auto off = begin; off < end;) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), end - off));
      const auto n = read_some(part_, buf_.data(), want, off, ec);
      if (ec) return ec;
      if (n == 0) break;
      h.update(buf_.data(), n);
      if (whole) whole->update(buf_.data(), n);
      off += n;
    }
    if (h.hex_digest() != r.digests[i]) {
      cx_.log(net::log_level::warn, "partial data differs from its checkpoint at chunk " + std::to_string(i) +
                                        "; fetching again from byte " + std::to_string(begin));
      break;
    }
    if (whole) whole_ = std::move(*whole);
    verified = end;
  }
  if (verified < r.offset) {
    r.offset = verified - verified % chunk;
    r.digests.resize(static_cast<std::size_t>(r.offset / chunk));
    // The whole-file hash covers `verified` bytes; recompute it up to the new offset.
    if (auto hec = hash_prefix(r.offset)) return hec;
    truncate_file(part_, r.offset, ec);
    if (ec) return ec;
    if (auto sec = cx_.save()) return sec;
  }
  written_ = r.offset;
  sync_->digests = r.digests;
  sync_->synced = r.digests.size();
  reset_hashes();
  sync_->fd = part_.duplicate(ec);
  return ec;
}

error_code download_run::append(const char* data, std::size_t n) {
  auto& r = cx_.r;
  if (sync_->error) return sync_->error;
  while (n > 0) {
    const auto to_boundary = r.checkpoint_bytes - written_ % r.checkpoint_bytes;
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, to_boundary));
    error_code ec;
    write_all(part_, data, take, written_, ec);
    if (ec) return ec;
    if (want_whole_) whole_.update(data, take);
    hashes_.wrote(written_, data, take, [&st = *sync_](std::uint64_t index, std::string digest) {
      if (st.digests.size() <= index) st.digests.resize(static_cast<std::size_t>(index) + 1);
      st.digests[static_cast<std::size_t>(index)] = std::move(digest);
    });
    written_ += take;
    r.bytes_received += take;
    cx_.moved(take);
    data += take;
    n -= take;
    if (written_ % r.checkpoint_bytes == 0) {
      if (auto cec = checkpoint()) return cec;
    }
  }
  return {};
}

error_code download_run::checkpoint() {
  auto& r = cx_.r;
  if (!r.length && cx_.opts.min_free_space) {
    // Unannounced length: never fill the disk; keep the reserve free.
    error_code ec;
    const auto avail = free_space(cx_.st.dir(), ec);
    if (!ec && avail < cx_.opts.min_free_space) return make_error_code(error::insufficient_space);
  }
  // Start writing the finished chunk back now, without waiting: the fdatasync that makes it
  // durable then finds little left to do, so the download need not stall behind the disk.
  start_writeback(part_, written_ - r.checkpoint_bytes, r.checkpoint_bytes);
  if (!sync_->busy)
    start_sync(cx_, sync_, written_);
  else
    sync_->next = written_;
  return {};
}

error_code download_run::restore_segments() {
  auto& r = cx_.r;
  error_code ec;
  const auto length = *r.length, chunk = r.checkpoint_bytes;
  // Bytes past the content's end are nobody's; holes read back as zeros and fail their digest.
  if (auto id = identify_file(part_); !id || id->size > length) {
    truncate_file(part_, length, ec);
    if (ec) return ec;
  }
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < r.chunks.size(); ++i) {
    if (r.chunks[i].empty()) continue;
    const auto from = i * chunk, to = std::min(from + chunk, length);
    auto got = chunk_digests(part_, from, to, chunk, ec, r.chunk_digest);
    if (ec) return ec;
    if (got.size() != 1 || got.front() != r.chunks[i]) {
      if (dropped++ == 0)
        cx_.log(net::log_level::warn, "partial data differs from its checkpoint at chunk " + std::to_string(i) +
                                          "; fetching it again from byte " + std::to_string(from));
      r.chunks[i].clear();
    }
  }
  if (dropped > 0) {
    r.offset = held_bytes(r.chunks, chunk, length);
    if (auto sec = cx_.save()) return sec;
  }
  written_ = r.offset;
  sync_->fd = part_.duplicate(ec);
  return ec;
}

asio::awaitable<attempt_end> download_run::segments(const net::endpoint_url& url, bool origin) {
  segmented_run seg(cx_, part_);
  auto end = co_await seg.run(url, origin);
  written_ = seg.written();
  switch (seg.ending()) {
    case segment_ending::other_version:
      cx_.log(net::log_level::info, end.message + "; starting over");
      restart_from_zero(true);
      if (auto sec = cx_.save()) {
        end.ec = sec;
        end.local = true;
        end.message = "cannot write the state record: " + describe_failure(sec);
      }
      break;
    case segment_ending::one_connection:
      cx_.log(net::log_level::info, end.message + "; going on with one connection");
      if (auto oec = to_one_connection()) {
        end.ec = oec;
        end.local = true;
        end.message = "cannot keep the partial data for one connection: " + describe_failure(oec);
      } else {
        end.ec = {};  // not a failure: the attempt goes on over one connection
      }
      break;
    case segment_ending::complete:
      written_ = *cx_.r.length;
      break;
    case segment_ending::failed:
    case segment_ending::stopped: break;
  }
  co_return end;
}

error_code download_run::to_one_connection() {
  auto& r = cx_.r;
  const auto chunk = r.checkpoint_bytes, length = *r.length;
  std::size_t prefix = 0;
  while (prefix < r.chunks.size() && !r.chunks[prefix].empty()) ++prefix;
  ++sync_->epoch;
  r.digests.assign(r.chunks.begin(), r.chunks.begin() + static_cast<std::ptrdiff_t>(prefix));
  r.chunks.clear();
  r.offset = std::min<std::uint64_t>(prefix * chunk, length);
  r.ranges_refused = true;
  error_code ec;
  truncate_file(part_, r.offset, ec);
  if (ec) return ec;
  if (auto hec = hash_prefix(r.offset)) return hec;
  written_ = r.offset;
  sync_->digests = r.digests;
  sync_->synced = r.digests.size();
  reset_hashes();
  return cx_.save();
}

error_code download_run::finish_segments() {
  auto& r = cx_.r;
  error_code ec;
  ++sync_->epoch;
  sync_data(part_, ec);
  if (ec) return ec;
  const auto chunk = r.checkpoint_bytes, length = *r.length;
  for (std::size_t i = 0; i < r.chunks.size(); ++i) {
    if (!r.chunks[i].empty()) continue;
    const auto from = i * chunk;
    auto got = chunk_digests(part_, from, std::min(from + chunk, length), chunk, ec, r.chunk_digest);
    if (ec) return ec;
    r.chunks[i] = got.empty() ? std::string() : got.front();
  }
  r.digests = std::move(r.chunks);
  r.chunks.clear();
  r.offset = written_ = length;
  if (auto hec = hash_prefix(length)) return hec;
  return cx_.save();
}

result download_run::finalize() {
  auto& r = cx_.r;
  auto res = cx_.make_result();
  error_code ec;
  if (sync_->error) ec = sync_->error;
  if (!ec && !r.chunks.empty()) ec = finish_segments();
  if (!ec && r.offset != written_) {
    ++sync_->epoch;  // this synchronous sync covers whatever is still in flight
    sync_data(part_, ec);
    if (!ec) {
      // Every chunk's digest, the last shorter one included: as hashed while written, or
      // read back where it was not.
      const auto chunk = r.checkpoint_bytes;
      auto digests = sync_->digests;
      digests.resize(static_cast<std::size_t>((written_ + chunk - 1) / chunk));
      if (const auto tail = written_ % chunk; tail != 0 && digests.back().empty())
        digests.back() = hashes_.digest_upto(written_ / chunk, written_).value_or(std::string());
      for (std::size_t k = 0; k < digests.size(); ++k)
        read_back(part_, k, chunk, written_, r.chunk_digest, digests[k], ec);
      if (!ec) {
        r.digests = std::move(digests);
        r.offset = written_;
        ec = cx_.save();
      }
    }
  }
  res.bytes_on_disk = r.offset;
  res.bytes_received = r.bytes_received;
  res.bytes_expected = r.length;
  res.restarts = r.restarts;
  res.attempts = r.attempts;
  if (ec) {
    res.error = ec;
    res.message = "cannot sync the download: " + sync_failure(ec);
    return res;
  }
  if (want_whole_) res.sha256 = whole_.hex_digest();
  if (!r.sha256_expected.empty() && !equal_hex(res.sha256, r.sha256_expected)) {
    res.error = make_error_code(error::integrity_mismatch);
    res.message = "SHA-256 of the content is " + res.sha256 + ", expected " + r.sha256_expected;
    return res;
  }
  part_.close();
  move_into_place(cx_.part_path(), r.file, ec);
  if (ec) {
    res.error = ec;
    res.message = "cannot move the download into " + r.file + ": " + describe_failure(ec);
    return res;
  }
  r.produced = identify_file(r.file);
  res.outcome = outcome::success;
  return res;
}

}  // namespace tether::transfer::detail
