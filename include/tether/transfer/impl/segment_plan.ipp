// tether/transfer/impl/segment_plan.ipp: segmented downloads' decisions (no I/O).
#pragma once

#include <tether/net/http.hpp>
#include <tether/net/retry.hpp>
#include <tether/transfer/detail/segment_plan.hpp>

#include <boost/beast/core/string.hpp>

#include <algorithm>

namespace tether::transfer::detail {

bool may_segment(const record& r, const response_verdict& v, const segment_limits& limits) noexcept {
  if (limits.connections < 2 || r.ranges_refused || !v.length || !v.accepts_ranges) return false;
  const auto least = std::max<std::uint64_t>(limits.min_segment, 1);
  if (*v.length / 2 < least) return false;
  const bool provable = !v.etag.empty() || v.last_modified_strong || !r.sha256_expected.empty();
  return provable;
}

std::vector<span> missing_spans(const std::vector<std::string>& chunks, std::uint64_t chunk, std::uint64_t length) {
  std::vector<span> out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (!chunks[i].empty()) continue;
    const auto begin = std::min(i * chunk, length), end = std::min(begin + chunk, length);
    if (begin == end) continue;
    if (!out.empty() && out.back().end == begin)
      out.back().end = end;
    else
      out.push_back({begin, end});
  }
  return out;
}

std::optional<std::uint64_t> split_point(span s, std::uint64_t chunk, std::uint64_t min_segment) noexcept {
  const auto least = std::max<std::uint64_t>({min_segment, chunk, 1});
  if (s.size() < 2 * least) return std::nullopt;
  auto mid = s.begin + s.size() / 2;
  if (chunk > 0) mid = (mid + chunk - 1) / chunk * chunk;
  if (mid - s.begin < least || s.end <= mid || s.end - mid < least) return std::nullopt;
  return mid;
}

ramp_step judge_ramp(const ramp_sample& s, const ramp_policy& p) noexcept {
  if (s.elapsed < p.window && s.bytes < p.window_bytes) return ramp_step::sample;
  const auto elapsed = static_cast<double>(s.elapsed.count()), waiting = static_cast<double>(s.waiting.count());
  return waiting >= p.waiting_share * elapsed ? ramp_step::open_all : ramp_step::again;
}

std::vector<span> initial_segments(std::vector<span> missing, std::uint64_t chunk, const segment_limits& limits) {
  const auto want = std::max<std::uint32_t>(limits.connections, 1);
  while (missing.size() < want) {
    auto largest = std::max_element(missing.begin(), missing.end(),
                                    [](const span& a, const span& b) { return a.size() < b.size(); });
    if (largest == missing.end()) break;
    const auto at = split_point(*largest, chunk, limits.min_segment);
    if (!at) break;
    const span tail{*at, largest->end};
    largest->end = *at;
    missing.insert(largest + 1, tail);
  }
  return missing;
}

namespace {
segment_verdict verdict(segment_step step, std::string why, error_code ec = {}) {
  segment_verdict v;
  v.step = step;
  v.why = std::move(why);
  v.ec = ec ? ec : make_error_code(error::range_mismatch);
  return v;
}
}  // namespace

segment_verdict judge_segment(const record& r, span asked, const response_facts& f,
                              std::chrono::system_clock::time_point now) {
  const auto status_text = std::to_string(f.status) + (f.reason.empty() ? "" : " " + f.reason);
  const bool other_etag = !r.etag.empty() && net::is_strong_etag(f.etag) && f.etag != r.etag;
  if (f.status >= 300 && f.status < 400 && f.status != 304)
    return verdict(segment_step::one_connection, status_text + " to a segment's Range request");
  if (f.status == 416) return verdict(segment_step::other_version, "416 for bytes the content had");
  if (f.status != 200 && f.status != 206) {
    auto v = verdict(segment_step::fail, status_text, net::status_error(f.status));
    if (!f.retry_after.empty()) v.retry_after = net::parse_retry_after(f.retry_after, now, std::chrono::hours{24 * 365});
    return v;
  }
  if (!f.content_encoding.empty() && !boost::beast::iequals(f.content_encoding, "identity"))
    return verdict(segment_step::fatal,
                   "the server sent a segment with Content-Encoding: " + f.content_encoding +
                       " although the request accepted only identity",
                   make_error_code(error::encoded_content));
  if (f.status == 200) {
    // If-Range did not hold (another version), or the server ignores Range for this content.
    const bool changed = other_etag || (r.etag.empty() && !r.last_modified.empty() && f.last_modified != r.last_modified) ||
                         (f.content_length && r.length && *f.content_length != *r.length);
    if (changed) return verdict(segment_step::other_version, "200 with another version to a segment's Range request");
    return verdict(segment_step::one_connection, "200 (the whole content) to a segment's Range request");
  }
  const auto cr = net::parse_content_range(f.content_range);
  if (!cr || !cr->satisfied) return verdict(segment_step::fail, "206 with an unusable Content-Range");
  if (!cr->complete_length || !r.length || *cr->complete_length != *r.length || other_etag)
    return verdict(segment_step::other_version, other_etag ? "206 with another ETag" : "206 for a different length");
  if (cr->first != asked.begin || cr->last < cr->first || cr->last + 1 > asked.end)
    return verdict(segment_step::fail, "206 for bytes " + std::to_string(cr->first) + "-" + std::to_string(cr->last) +
                                           " instead of " + std::to_string(asked.begin) + "-" +
                                           std::to_string(asked.end - 1));
  if (f.content_length && *f.content_length != cr->last - cr->first + 1)
    return verdict(segment_step::fail, "206 whose Content-Length disagrees with its Content-Range");
  segment_verdict v;
  v.step = segment_step::body;
  v.last = cr->last;
  return v;
}

}  // namespace tether::transfer::detail
