// tether/transfer/impl/tus_plan.ipp: the tus client's judgements of server answers (no I/O).
#pragma once

#include <tether/net/detail/ascii.hpp>
#include <tether/net/http.hpp>
#include <tether/net/retry.hpp>
#include <tether/transfer/detail/tus_plan.hpp>


namespace tether::transfer::detail {

std::set<std::string> header_tokens(std::string_view v) {
  std::set<std::string> out;
  while (!v.empty()) {
    const auto comma = v.find(',');
    auto t = v.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    std::string low = net::detail::ascii_lower(t);
    if (!low.empty()) out.insert(std::move(low));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

tus_capabilities judge_options(unsigned status, std::string_view extensions, std::string_view algorithms) {
  tus_capabilities c;
  if (status < 200 || status >= 300) return c;
  const auto ext = header_tokens(extensions);
  const auto algs = header_tokens(algorithms);
  c.termination = ext.count("termination") > 0;
  if (ext.count("checksum")) {
    if (algs.count("sha256"))
      c.checksum = hash_algorithm::sha256;
    else if (algs.count("sha1"))
      c.checksum = hash_algorithm::sha1;
  }
  return c;
}

namespace {
tus_verdict make_verdict(tus_verdict::kind_t k, error_code ec = {}, std::string why = {}) {
  tus_verdict v;
  v.kind = k;
  v.ec = ec;
  v.why = std::move(why);
  return v;
}
tus_verdict status_verdict(unsigned status) { return make_verdict(tus_verdict::fail, net::status_error(status)); }
bool is_2xx(unsigned status) { return status >= 200 && status < 300; }
}  // namespace

tus_verdict judge_creation(unsigned status, std::string_view location, const net::endpoint_url& create) {
  if (status != 201) return status_verdict(status);
  auto target = location.empty() ? boost::system::result<net::endpoint_url>(make_error_code(error::invalid_url))
                                 : net::resolve_url(create, location);
  if (!target || (target->scheme != net::scheme::http && target->scheme != net::scheme::https))
    return make_verdict(tus_verdict::fail, make_error_code(error::protocol_error), "201 without a usable Location");
  auto v = make_verdict(tus_verdict::proceed);
  v.location = std::move(*target);
  return v;
}

tus_verdict judge_head(unsigned status, std::optional<std::string_view> upload_offset,
                       std::optional<std::string_view> upload_length, std::uint64_t source_size) {
  if (status == 404 || status == 410)
    return make_verdict(tus_verdict::forget, {}, "the server answered " + std::to_string(status) + " for the upload");
  if (!is_2xx(status)) return status_verdict(status);
  const auto offset = upload_offset ? net::parse_decimal(*upload_offset) : std::nullopt;
  // A server that leaves out Upload-Length (deferred length) is taken to hold ours.
  const auto length = upload_length ? net::parse_decimal(*upload_length) : std::optional<std::uint64_t>(source_size);
  if (!offset || !length || *length != source_size || *offset > source_size)
    return make_verdict(tus_verdict::fail, make_error_code(error::protocol_error),
                   "missing or inconsistent Upload-Offset / Upload-Length");
  auto v = make_verdict(tus_verdict::proceed);
  v.offset = *offset;
  return v;
}

tus_verdict judge_patch(unsigned status, std::optional<std::string_view> upload_offset, std::uint64_t begin,
                        std::uint64_t end) {
  if (status == 404 || status == 410)
    return make_verdict(tus_verdict::forget, make_error_code(error::retry_later),
                   "the server answered " + std::to_string(status) + " to a PATCH");
  if (status == 409 || status == 423 || status == 460) {
    // Offset mismatch, a lock held by a dead earlier request, or a checksum mismatch: ask the
    // server again (HEAD on the next attempt) and resend from its offset, with backoff.
    return make_verdict(tus_verdict::retry, make_error_code(error::retry_later));
  }
  if (!is_2xx(status)) return status_verdict(status);
  const auto now_at = upload_offset ? net::parse_decimal(*upload_offset) : std::nullopt;
  if (!now_at || *now_at <= begin || *now_at > end)
    return make_verdict(tus_verdict::fail, make_error_code(error::protocol_error),
                   "missing or impossible Upload-Offset in the answer");
  auto v = make_verdict(tus_verdict::proceed);
  v.offset = *now_at;
  return v;
}

}  // namespace tether::transfer::detail
