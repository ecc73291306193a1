// tether/transfer/impl/put.ipp: an upload as one PUT (or POST) of the whole file.
#pragma once

#include <tether/transfer/impl/upload.ipp>

namespace tether::transfer::detail {

asio::awaitable<attempt_end> upload_run::put_attempt(std::string& digest) {
  auto& r = cx_.r;
  auto parsed = net::parse_url(r.url);  // validated when the record was made or loaded
  if (!parsed) co_return attempt_end{parsed.error(), 0, std::nullopt, "the URL does not parse", false, false};
  const auto url = *parsed;
  if (r.bytes_received > 0) ++r.restarts;  // an earlier attempt sent bytes: this one starts over
  const auto verb = r.protocol == upload_protocol::post ? http::verb::post : http::verb::put;
  const std::string where = std::string(http::to_string(verb)) + " " + url.redacted();
  co_return co_await with_connection(cx_, url, [&](auto& stream, beast::tcp_stream& tcp) -> asio::awaitable<attempt_end> {
    http::request<http::empty_body> req{verb, url.target, 11};
    add_headers(req, url, r, true);
    if (req.find(http::field::content_type) == req.end()) req.set(http::field::content_type, "application/octet-stream");
    string_response res;
    std::optional<sha256> hash;
    if (cx_.opts.report_sha256) hash.emplace();
    auto end = co_await send_with_body(stream, tcp, req, 0, r.source_size, where, res, hash ? &*hash : nullptr, false);
    if (end.ec) co_return end;
    if (end.status < 200 || end.status >= 300) co_return status_failure(end, where, res);
    if (hash) digest = hash->hex_digest();
    end.complete = true;
    co_return end;
  });
}

}  // namespace tether::transfer::detail
