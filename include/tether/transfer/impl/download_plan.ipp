// tether/transfer/impl/download_plan.ipp: resume planning and response judgement (no I/O).
#pragma once

#include <tether/net/http.hpp>
#include <tether/net/retry.hpp>
#include <tether/transfer/detail/download_plan.hpp>

#include <boost/beast/core/string.hpp>

namespace tether::transfer::detail {

resume_plan plan_resume(const record& r, std::uint64_t held) {
  resume_plan p;
  if (held == 0) return p;
  // Without a validator, held bytes cannot be proven to belong to the content the server has
  // now; only a caller-supplied SHA-256 makes continuing them safe. Otherwise: start over.
  if (r.etag.empty() && r.last_modified.empty() && r.sha256_expected.empty()) {
    p.restart = true;
    return p;
  }
  p.range_from = held;
  p.if_range = !r.etag.empty() ? r.etag : r.last_modified;
  return p;
}

std::uint64_t chunk_size_for(std::optional<std::uint64_t> length, std::uint64_t configured) noexcept {
  constexpr std::uint64_t step = 64u << 10;
  if (length && *length / 1024 > configured) return (*length / 1024 + step - 1) / step * step;
  return configured;
}

namespace {
response_verdict failing(error_code ec, std::string why) {
  response_verdict v;
  v.step = response_step::fail;
  v.ec = ec;
  v.why = std::move(why);
  return v;
}
response_verdict starting_over(std::string why) {
  response_verdict v;
  v.step = response_step::start_over;
  v.ec = make_error_code(error::range_mismatch);
  v.why = std::move(why) + "; starting over";
  return v;
}
// "identity" is no encoding at all.
bool same_encoding(std::string_view a, std::string_view b) {
  auto plain = [](std::string_view e) { return e.empty() || boost::beast::iequals(e, "identity"); };
  return plain(a) ? plain(b) : boost::beast::iequals(a, b);
}
}  // namespace

response_verdict judge_response(const record& r, std::uint64_t held, const response_facts& f,
                                const net::endpoint_url& url, const response_limits& limits,
                                std::chrono::system_clock::time_point now) {
  const auto status_text = std::to_string(f.status) + (f.reason.empty() ? "" : " " + f.reason);
  if (f.status >= 300 && f.status < 400 && f.status != 304) {
    auto target = f.location.empty() ? boost::system::result<net::endpoint_url>(make_error_code(error::invalid_url))
                                     : net::resolve_url(url, f.location);
    // A transfer follows http and https only (resolve_url takes any scheme it can parse).
    if (!target || (target->scheme != net::scheme::http && target->scheme != net::scheme::https))
      return failing(make_error_code(error::protocol_error), status_text + " without a usable Location");
    response_verdict v;
    v.step = response_step::redirect;
    v.redirect = std::move(*target);
    return v;
  }
  if (f.status != 200 && f.status != 206 && f.status != 416) {
    auto v = failing(net::status_error(f.status), status_text);
    if (!f.retry_after.empty()) v.retry_after = net::parse_retry_after(f.retry_after, now, std::chrono::hours{24 * 365});
    return v;
  }
  if (!f.content_encoding.empty() && !boost::beast::iequals(f.content_encoding, "identity")) {
    // Identity was asked for; a server that encodes anyway (e.g. a forced gzip) sends bytes that
    // are not the file. Never store them as if they were: fail loudly, keep what is durable.
    return failing(make_error_code(error::encoded_content),
                   "the server sent the body with Content-Encoding: " + f.content_encoding +
                       " although the request accepted only identity; it is not saved as the file");
  }
  const bool resume = held > 0;
  if (f.status == 416) return starting_over("416 for bytes from " + std::to_string(held));
  if (f.status == 206) {
    const auto cr = net::parse_content_range(f.content_range);
    if (!resume || !cr || !cr->satisfied) return starting_over("206 with an unusable Content-Range");
    if (cr->first != held)
      return starting_over("206 starting at byte " + std::to_string(cr->first) + " instead of " + std::to_string(held));
    if (!cr->complete_length || !r.length || *cr->complete_length != *r.length || cr->last + 1 != *r.length)
      return starting_over("206 for a different length");
    if (!r.etag.empty() && net::is_strong_etag(f.etag) && f.etag != r.etag) return starting_over("206 with another ETag");
    if (!same_encoding(f.content_encoding, r.content_encoding))
      return starting_over("206 with another Content-Encoding");
    response_verdict v;
    v.step = response_step::body;
    return v;
  }
  // 200: the whole content from byte 0, whatever was asked.
  response_verdict v;
  v.step = response_step::body;
  v.whole = true;
  v.restart = resume;
  v.etag = net::is_strong_etag(f.etag) ? f.etag : std::string{};
  v.last_modified = f.last_modified;
  v.accepts_ranges = boost::beast::iequals(f.accept_ranges, "bytes");
  if (!f.last_modified.empty() && !f.date.empty()) {
    const auto modified = net::parse_http_date(f.last_modified), date = net::parse_http_date(f.date);
    v.last_modified_strong = modified && date && *date - *modified >= std::chrono::seconds{60};
  }
  v.length = f.content_length;
  v.checkpoint_bytes = chunk_size_for(v.length, limits.checkpoint_bytes);
  if (v.length && limits.max_download_bytes && *v.length > limits.max_download_bytes) {
    auto too = failing(make_error_code(error::too_large),
                       "Content-Length " + std::to_string(*v.length) + " is above the limit of " +
                           std::to_string(limits.max_download_bytes) + " bytes");
    too.restart = v.restart;
    return too;
  }
  return v;
}

}  // namespace tether::transfer::detail
