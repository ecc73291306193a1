// tether/transfer/impl/upload.ipp: an upload's source (unchanged, proven by digests), its
// acknowledged checkpoints, and the request body sender shared by PUT and tus.
#pragma once

#include <tether/net/retry.hpp>
#include <tether/transfer/detail/upload_run.hpp>

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <fcntl.h>

namespace tether::transfer::detail {

attempt_end status_failure(attempt_end end, const std::string& where, const string_response& res) {
  end.ec = net::status_error(end.status);
  end.message = where + ": " + std::to_string(end.status) + " " + std::string(res.reason());
  return end;
}

asio::awaitable<result> upload_run::run() {
  auto& r = cx_.r;
  error_code ec;
  source_ = open_file(r.file, O_RDONLY, ec);
  std::string why;
  if (!ec) ec = check_source(why);
  if (!ec && !r.sha256_expected.empty()) {
    // The caller said what the source must be: check before any byte leaves.
    const auto actual = hash_range(0, r.source_size, ec);
    if (!ec && actual != r.sha256_expected && !boost::beast::iequals(actual, r.sha256_expected)) {
      ec = make_error_code(error::source_changed);
      why = "the SHA-256 of " + r.file + " is " + actual + ", expected " + r.sha256_expected;
    }
  }
  if (ec) {
    auto res = cx_.make_result();
    res.error = ec;
    res.message = why.empty() ? "cannot read the source: " + describe_failure(ec) : why;
    co_return res;
  }
  r.length = r.source_size;
  if (r.protocol != upload_protocol::tus) {
    std::string digest;
    co_return co_await retry_loop(cx_, [&] { return put_attempt(digest); }, [&] {
      auto res = cx_.make_result();
      res.outcome = outcome::success;
      res.sha256 = r.sha256_expected.empty() ? digest : r.sha256_expected;
      res.bytes_on_disk = r.offset = r.source_size;
      return res;
    });
  }
  auto res = co_await retry_loop(cx_, [&] { return tus_attempt(); }, [&] {
    auto done = cx_.make_result();
    done.outcome = outcome::success;
    error_code hec;
    if (!r.sha256_expected.empty())
      done.sha256 = r.sha256_expected;
    else if (cx_.opts.report_sha256)
      done.sha256 = hash_range(0, r.source_size, hec);
    return done;
  });
  if (cx_.j.stop == stop_kind::cancel && caps_.termination && !r.upload_url.empty()) co_await terminate();
  co_return res;
}

error_code upload_run::check_source(std::string& why) {
  auto& r = cx_.r;
  const auto now = identify_file(source_);
  if (!now) return error_code(errno, boost::system::system_category());
  if (now->size != r.source_size || now->mtime_ns != r.source_mtime_ns) {
    why = "the source file changed since the upload began (size " + std::to_string(r.source_size) + " -> " +
          std::to_string(now->size) + ", or its modification time)";
    return make_error_code(error::source_changed);
  }
  error_code ec;
  const auto covered = std::min<std::uint64_t>(r.digests.size() * r.checkpoint_bytes, r.source_size);
  const auto digests = chunk_digests(source_, 0, covered, r.checkpoint_bytes, ec, r.chunk_digest);
  if (ec) return ec == error::short_body ? make_error_code(error::source_changed) : ec;
  for (std::size_t i = 0; i < r.digests.size(); ++i) {
    if (i >= digests.size() || digests[i] != r.digests[i]) {
      why = "the source file's content changed within the part already uploaded (chunk " + std::to_string(i) + ")";
      return make_error_code(error::source_changed);
    }
  }
  return {};
}

std::string upload_run::hash_range(std::uint64_t begin, std::uint64_t end, error_code& ec, hash_algorithm alg) {
  if (begin >= end) return hasher(alg).hex_digest();
  auto digests = chunk_digests(source_, begin, end, end - begin, ec, alg);
  if (ec == error::short_body) ec = make_error_code(error::source_changed);
  return ec ? std::string{} : digests.front();
}

void upload_run::track_from(std::uint64_t begin) {
  if (tracking_ && begin == sent_pos_) return;
  const auto chunk = cx_.r.checkpoint_bytes;
  tracking_ = begin % chunk == 0;
  sent_first_ = begin / chunk;
  sent_pos_ = begin;
  sent_digests_.clear();
  sent_hash_ = hasher{cx_.r.chunk_digest};
}

void upload_run::track_sent(const char* p, std::size_t n) {
  const auto& r = cx_.r;
  while (tracking_ && n > 0) {
    const auto take =
        static_cast<std::size_t>(std::min<std::uint64_t>(r.checkpoint_bytes - sent_pos_ % r.checkpoint_bytes, n));
    sent_hash_.update(p, take);
    p += take;
    n -= take;
    sent_pos_ += take;
    if (sent_pos_ % r.checkpoint_bytes == 0 || sent_pos_ == r.source_size) sent_digests_.push_back(sent_hash_.hex_digest());
  }
}

error_code upload_run::acknowledge(std::uint64_t offset) {
  auto& r = cx_.r;
  // Moving forward, the previous record stays true if this one is lost in a crash (and a
  // resume asks the server anyway): no directory fsync needed.
  const bool forward = offset >= r.offset;
  if (offset < r.offset) r.digests.resize(static_cast<std::size_t>(offset / r.checkpoint_bytes));
  r.offset = offset;
  const auto full = offset == r.source_size ? (offset + r.checkpoint_bytes - 1) / r.checkpoint_bytes
                                            : offset / r.checkpoint_bytes;
  const std::uint64_t from = r.digests.size();
  if (from < full && tracking_ && from >= sent_first_ && full <= sent_first_ + sent_digests_.size()) {
    // Hashed while sending: no second read.
    const auto first = sent_digests_.begin() + static_cast<std::ptrdiff_t>(from - sent_first_);
    r.digests.insert(r.digests.end(), first, first + static_cast<std::ptrdiff_t>(full - from));
    sent_digests_.erase(sent_digests_.begin(), first + static_cast<std::ptrdiff_t>(full - from));
    sent_first_ = full;
  } else if (from < full) {
    error_code ec;
    const auto more = chunk_digests(source_, from * r.checkpoint_bytes,
                                    std::min(full * r.checkpoint_bytes, r.source_size), r.checkpoint_bytes, ec,
                                    r.chunk_digest);
    if (ec) return ec == error::short_body ? make_error_code(error::source_changed) : ec;
    r.digests.insert(r.digests.end(), more.begin(), more.end());
  }
  return cx_.save(forward);
}

template <class Stream, class Request>
asio::awaitable<attempt_end> upload_run::send_with_body(Stream& stream, beast::tcp_stream& tcp, Request& req,
                                                        std::uint64_t begin, std::uint64_t end_off,
                                                        const std::string& where, string_response& out, sha256* hash,
                                                        bool track) {
  attempt_end end;
  auto& r = cx_.r;
  if (track) track_from(begin);
  req.content_length(end_off - begin);
  http::request_serializer<http::empty_body> sr(req);
  arm(cx_, tcp);
  auto [wec, wn] = co_await http::async_write_header(stream, sr, nothrow);
  for (auto off = begin; !wec && off < end_off;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), end_off - off));
    error_code rec;
    const auto n = read_some(source_, buf_.data(), want, off, rec);
    if (rec || n == 0) {
      end.ec = rec ? rec : make_error_code(error::source_changed);
      end.message = "reading the source: " + (rec ? describe_failure(rec) : r.file + " got shorter");
      end.local = true;
      co_return end;
    }
    if (hash) hash->update(buf_.data(), n);
    if (track) track_sent(buf_.data(), n);
    arm(cx_, tcp);
    auto buffer = asio::buffer(buf_.data(), n);
    auto [e, m] = co_await asio::async_write(stream, buffer, nothrow);
    wec = e;
    off += m;
    r.bytes_received += m;
    cx_.moved(m);
    cx_.report(off);
    if (!wec && cx_.pace_limit() && !co_await cx_.pace(m)) wec = asio::error::operation_aborted;
    if (!wec && steady::now() >= cx_.deadline()) wec = beast::error::timeout;  // io_error: deadline_exceeded
    if (cx_.stopped()) wec = asio::error::operation_aborted;
  }
  if (wec) {
    end.ec = io_error(cx_, wec);
    end.message = where + ": " + end.ec.message();
    co_return end;
  }
  co_return co_await read_response(stream, tcp, where, out);
}

template <class Stream>
asio::awaitable<attempt_end> upload_run::read_response(Stream& stream, beast::tcp_stream& tcp,
                                                       const std::string& where, string_response& out, bool head) {
  attempt_end end;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(cx_.opts.max_header_bytes);
  parser.body_limit(64u << 10);
  parser.skip(head);  // a response to HEAD has no body, whatever its Content-Length says
  arm(cx_, tcp);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
  if (rec) {
    end.ec = io_error(cx_, rec);
    if (end.ec == error::short_body) end.ec = asio::error::connection_reset;
    end.message = where + ": " + describe(rec, end.ec);
    co_return end;
  }
  end.reusable = parser.keep_alive() && buffer.size() == 0;
  out = parser.release();
  end.status = out.result_int();
  if (auto ra = field_if(out, "Retry-After"))
    end.retry_after = net::parse_retry_after(*ra, std::chrono::system_clock::now(), std::chrono::hours{24 * 365});
  co_return end;
}

}  // namespace tether::transfer::detail
