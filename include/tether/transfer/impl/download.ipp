// tether/transfer/impl/download.ipp: a download's GETs: the planned request, the judged
// response, and the body read straight into the partial file.
#pragma once

#include <tether/transfer/detail/download_run.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace tether::transfer::detail {

namespace {
/// Reads and discards a short response body (at most 64 KiB announced, as a redirect's page),
/// so that the connection can carry the next request: true when it can.
template <class Stream, class Parser>
asio::awaitable<bool> discard_short_body(run_context& cx, Stream& stream, beast::tcp_stream& tcp,
                                         beast::flat_buffer& buffer, Parser& parser, std::vector<char>& scratch) {
  const auto announced = parser.content_length();
  if (!parser.is_done() && (!announced || *announced > (64u << 10))) co_return false;
  while (!parser.is_done()) {
    parser.get().body().data = scratch.data();
    parser.get().body().size = scratch.size();
    arm(cx, tcp);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (rec && rec != http::error::need_buffer) co_return false;
  }
  co_return parser.keep_alive() && buffer.size() == 0;
}
}  // namespace

asio::awaitable<result> download_run::run() {
  auto& r = cx_.r;
  if (auto ec = restore()) {
    auto res = cx_.make_result();
    res.error = ec;
    res.message = "cannot restore the partial data: " + describe_failure(ec);
    co_return res;
  }
  co_return co_await retry_loop(
      cx_,
      [&]() -> asio::awaitable<attempt_end> {
        if (r.length && written_ == *r.length && written_ > 0) {
          attempt_end done;
          done.complete = true;
          co_return done;
        }
        co_return co_await attempt();
      },
      [&] { return finalize(); });
}

/// One GET (following redirects) from written_ on.
asio::awaitable<attempt_end> download_run::attempt() {
  auto& r = cx_.r;
  if (plan_resume(r, written_).restart) restart_from_zero(true);
  auto first = net::parse_url(r.url);  // validated when the record was made or loaded
  if (!first) co_return attempt_end{first.error(), 0, std::nullopt, "the URL does not parse", false, false};
  auto url = *first;
  if (!r.chunks.empty()) {
    // A segmented download goes on where its URL led (final_url was validated with the record).
    if (!r.final_url.empty()) url = *net::parse_url(r.final_url);
    auto end = co_await segments(url, same_origin(url, *first));
    if (!r.chunks.empty() || end.ec || end.complete || cx_.stopped()) co_return end;
    // Back to one connection (the server refused ranges): this attempt goes on that way.
  }
  for (std::uint32_t redirects = 0;; ++redirects) {
    std::optional<net::endpoint_url> next;
    auto end = co_await with_connection(cx_, url, [&](auto& stream, beast::tcp_stream& tcp) {
      return exchange(stream, tcp, url, same_origin(url, *first), next);
    });
    if (segment_now_) {
      segment_now_ = false;
      auto seg = co_await segments(url, same_origin(url, *first));
      if (!r.chunks.empty() || seg.ec || seg.complete || cx_.stopped()) co_return seg;
      continue;  // back to one connection: the same URL again, from what is held
    }
    if (!next) co_return end;
    if (redirects + 1 > cx_.opts.max_redirects) {
      end.ec = make_error_code(error::too_many_redirects);
      end.message = "more than " + std::to_string(cx_.opts.max_redirects) + " redirects";
      co_return end;
    }
    url = *next;
    r.final_url = url.to_string();
  }
}

/// A 200: the content's identity recorded, space checked and reserved, before any byte.
error_code download_run::begin_whole(const response_verdict& v, std::string& why) {
  auto& r = cx_.r;
  r.etag = v.etag;
  r.last_modified = v.last_modified;
  r.content_encoding.clear();
  r.length = v.length;
  r.checkpoint_bytes = v.checkpoint_bytes;  // raised for a huge file: the chunks hashed change too
  reset_hashes();
  if (r.length) {
    error_code sec;
    const auto need = *r.length;
    const auto avail = free_space(cx_.st.dir(), sec);
    if (!sec && avail < need) {
      why = "need " + std::to_string(need) + " bytes in the state directory, " + std::to_string(avail) + " are free";
      return make_error_code(error::insufficient_space);
    }
    if (cx_.opts.preallocate) {
      preallocate(part_, need, sec);
      if (sec) {
        why = "cannot reserve " + std::to_string(need) + " bytes: " + describe_failure(sec);
        return sec;
      }
    }
  }
  if (auto sec = cx_.save()) {
    why = "cannot write the state record: " + describe_failure(sec);
    return sec;
  }
  return {};
}

template <class Stream>
asio::awaitable<attempt_end> download_run::exchange(Stream& stream, beast::tcp_stream& tcp,
                                                    const net::endpoint_url& url, bool origin,
                                                    std::optional<net::endpoint_url>& redirect) {
  auto& r = cx_.r;
  attempt_end end;
  const std::string where = "GET " + url.redacted();
  const auto plan = plan_resume(r, written_);
  http::request<http::empty_body> req{http::verb::get, url.target, 11};
  add_headers(req, url, r, origin);
  req.set(http::field::accept_encoding, "identity");
  if (plan.range_from) {
    req.set(http::field::range, "bytes=" + std::to_string(*plan.range_from) + "-");
    if (!plan.if_range.empty()) req.set(http::field::if_range, plan.if_range);
  }
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
  end.status = res.result_int();
  response_facts facts;
  facts.status = end.status;
  facts.reason = std::string(res.reason());
  facts.etag = field(res, http::field::etag);
  facts.last_modified = field(res, http::field::last_modified);
  facts.content_encoding = field(res, http::field::content_encoding);
  facts.content_range = field(res, http::field::content_range);
  facts.location = field(res, http::field::location);
  facts.retry_after = field(res, http::field::retry_after);
  facts.date = field(res, http::field::date);
  facts.accept_ranges = field(res, http::field::accept_ranges);
  if (auto n = parser.content_length()) facts.content_length = *n;
  const auto v = judge_response(r, written_, facts, url,
                                {cx_.opts.checkpoint_bytes, cx_.opts.max_download_bytes},
                                std::chrono::system_clock::now());
  if (v.restart) {
    cx_.log(net::log_level::info, "the server sent the whole content; starting over");
    restart_from_zero(true);
  }
  switch (v.step) {
    case response_step::redirect:
      redirect = v.redirect;
      end.reusable = co_await discard_short_body(cx_, stream, tcp, buffer, parser, buf_);
      co_return end;
    case response_step::fail:
      end.ec = v.ec;
      end.retry_after = v.retry_after;
      end.message = where + ": " + v.why;
      co_return end;
    case response_step::start_over:
      // Proof failed: what we hold cannot be continued from this response.
      restart_from_zero(true);
      end.ec = v.ec;
      end.message = where + ": " + v.why;
      co_return end;
    case response_step::body: break;
  }
  if (v.whole) {
    std::string why;
    if (auto ec = begin_whole(v, why)) {
      end.ec = ec;
      end.local = true;
      end.message = why;
      co_return end;
    }
    if (may_segment(r, v, {cx_.opts.connections_per_download, cx_.opts.min_segment_bytes})) {
      // Several connections will fetch it, each its own Range: this response is not read.
      r.chunks.assign(static_cast<std::size_t>((*r.length + r.checkpoint_bytes - 1) / r.checkpoint_bytes), {});
      if (auto sec = cx_.save()) {
        end.ec = sec;
        end.local = true;
        end.message = "cannot write the state record: " + describe_failure(sec);
        co_return end;
      }
      segment_now_ = true;
      end.drop = true;
      co_return end;
    }
  }

  // The body. An identity body (Content-Length or close-delimited) is read straight from the
  // stream into the large buffer; Beast's parser, which reads through a small buffer, only
  // handles chunked bodies.
  const auto start_written = written_;
  // Takes `got` bytes at the front of buf_: checks, writes, paces. Sets end on failure.
  auto take = [&](std::size_t got) -> asio::awaitable<bool> {
    if (r.length && written_ + got > *r.length) {
      end.ec = make_error_code(error::protocol_error);
      end.message = where + ": more body than announced";
      co_return false;
    }
    if (!r.length && cx_.opts.max_download_bytes && written_ + got > cx_.opts.max_download_bytes) {
      end.ec = make_error_code(error::too_large);
      end.message = where + ": a body of unannounced length went past the limit of " +
                    std::to_string(cx_.opts.max_download_bytes) + " bytes";
      co_return false;
    }
    if (auto aec = append(buf_.data(), got)) {
      end.ec = aec;
      end.message = "writing the partial data: " + sync_failure(aec);
      end.local = true;
      co_return false;
    }
    end.progressed = true;
    cx_.report(written_);
    if (cx_.pace_limit() && !co_await cx_.pace(got)) co_return false;
    if (steady::now() >= cx_.deadline()) {  // a paced body reads quickly: its timer alone would not see it
      end.ec = make_error_code(error::deadline_exceeded);
      end.message = where + ": the transfer did not finish within its deadline";
      co_return false;
    }
    // Bounded loss: never more than max_unsynced_bytes ahead of what is durable; wait for the syncer.
    const auto lag = std::max<std::uint64_t>(cx_.opts.max_unsynced_bytes, 2 * r.checkpoint_bytes);
    while (sync_->busy && written_ - r.offset > lag && !cx_.stopped())
      co_await cx_.wait_until(steady::time_point::max(), &sync_->waiter);
    if (sync_->error) {
      end.ec = sync_->error;
      end.message = "syncing the partial data: " + sync_failure(end.ec);
      end.local = true;
      co_return false;
    }
    co_return !cx_.stopped();
  };
  auto failed = [&](error_code rec) {
    end.ec = io_error(cx_, rec);
    end.message = where + ": " + describe(rec, end.ec) + " after " + std::to_string(written_ - start_written) +
                  " body bytes";
  };
  if (!parser.is_done() && !parser.chunked()) {
    // What Beast read past the header first.
    if (const auto n = std::min(buffer.size(), buf_.size()); n > 0) {
      asio::buffer_copy(asio::buffer(buf_.data(), n), buffer.data());
      buffer.consume(n);
      if (!co_await take(r.length ? static_cast<std::size_t>(std::min<std::uint64_t>(n, *r.length - written_)) : n)) {
        if (!end.ec) failed(asio::error::operation_aborted);
        co_return end;
      }
    }
    while (!r.length || written_ < *r.length) {
      auto want = r.length ? static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size(), *r.length - written_))
                           : buf_.size();
      if (const auto limit = cx_.pace_limit()) want = std::min<std::size_t>(want, std::max<std::uint64_t>(limit / 20, 4096));
      arm(cx_, tcp);
      auto [rec, got] = co_await stream.async_read_some(asio::buffer(buf_.data(), want), nothrow);
      if (got > 0 && !co_await take(got)) {
        if (!end.ec) failed(asio::error::operation_aborted);
        co_return end;
      }
      if (rec) {
        const bool closed = rec == asio::error::eof || rec == asio::ssl::error::stream_truncated;
        if (!r.length && closed) break;  // a close-delimited body ends here
        failed(closed ? make_error_code(error::short_body) : rec);
        co_return end;
      }
    }
  } else {
    buffer.reserve(64u << 10);  // Beast reads at most 64 KiB at a time, and only this much
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = buf_.data();
      body.size = buf_.size();
      arm(cx_, tcp);
      auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (rec == http::error::need_buffer) rec = {};
      const auto got = buf_.size() - parser.get().body().size;
      if (got > 0 && !co_await take(got)) {
        if (!end.ec) failed(asio::error::operation_aborted);
        co_return end;
      }
      if (rec) {
        failed(rec);
        co_return end;
      }
    }
  }
  if (!r.length) r.length = written_;
  if (written_ != *r.length) {
    end.ec = make_error_code(error::short_body);
    end.message = where + ": body ended at byte " + std::to_string(written_) + " of " + std::to_string(*r.length);
    co_return end;
  }
  end.complete = true;
  // Read to its end: the connection may carry the next request.
  end.reusable = parser.keep_alive() && buffer.size() == 0 && (!parser.chunked() || parser.is_done());
  co_return end;
}

}  // namespace tether::transfer::detail
