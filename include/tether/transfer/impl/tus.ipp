// tether/transfer/impl/tus.ipp: the tus 1.0 session: OPTIONS once, POST (creation, its URL
// recorded before any data moves), HEAD for the server's offset, PATCHes until done; the
// answers are judged by detail/tus_plan.hpp.
#pragma once

#include <tether/net/detail/base64.hpp>
#include <tether/transfer/impl/upload.ipp>

namespace tether::transfer::detail {

namespace {
std::string hex_to_base64(const std::string& hex) {
  std::string raw;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return net::detail::base64(raw);
}

attempt_end failure(error_code ec, std::string message = {}) {
  attempt_end end;
  end.ec = ec;
  end.message = message.empty() ? describe_failure(ec) : std::move(message);
  end.local = true;  // the shell's own failures: the disk, the source, the record
  return end;
}

/// The verdict as the attempt's end: `where` and the status line or the verdict's reason.
attempt_end judged(attempt_end end, const tus_verdict& v, const std::string& where, const string_response& res) {
  end.ec = v.ec;
  end.message = where + ": " + (v.why.empty() ? std::to_string(end.status) + " " + std::string(res.reason()) : v.why);
  return end;
}

/// Keeps the server's Upload-Expires (tus expiration extension), when it sent one.
void note_expiry(record& r, const string_response& res) {
  const auto it = res.find("Upload-Expires");
  if (it == res.end()) return;
  if (const auto t = net::parse_http_date(it->value()))
    r.upload_expires_ms = std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}
}  // namespace

asio::awaitable<attempt_end> upload_run::tus_call(http::verb verb, const net::endpoint_url& url, header_list fields,
                                                  string_response& res, std::uint64_t body_begin,
                                                  std::uint64_t body_end) {
  const std::string where = std::string(http::to_string(verb)) + " " + url.redacted();
  co_return co_await with_connection(cx_, url, [&](auto& stream, beast::tcp_stream& tcp) -> asio::awaitable<attempt_end> {
    http::request<http::empty_body> req{verb, url.target, 11};
    add_headers(req, url, cx_.r, true);
    req.set("Tus-Resumable", "1.0.0");
    for (auto& [k, v] : fields) req.set(k, v);
    if (verb == http::verb::patch)
      co_return co_await send_with_body(stream, tcp, req, body_begin, body_end, where, res, nullptr, true);
    if (verb == http::verb::post || verb == http::verb::delete_) req.content_length(0);
    arm(cx_, tcp);
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
    if (wec) {
      attempt_end end;
      end.ec = io_error(cx_, wec);
      end.message = where + ": " + end.ec.message();
      co_return end;
    }
    co_return co_await read_response(stream, tcp, where, res, verb == http::verb::head);
  });
}

error_code upload_run::forget_upload(const std::string& why) {
  auto& r = cx_.r;
  cx_.log(net::log_level::warn, why + "; starting a new upload");
  r.upload_url.clear();
  r.upload_expires_ms = 0;
  r.offset = 0;
  r.digests.clear();
  ++r.restarts;
  return cx_.save();
}

asio::awaitable<attempt_end> upload_run::probe() {
  string_response res;
  const auto create = net::parse_url(cx_.r.url);
  if (!create) co_return failure(create.error(), "the URL does not parse");
  header_list no_fields;  // named: see scripts/check_coawait.py
  auto end = co_await tus_call(http::verb::options, *create, std::move(no_fields), res);
  if (end.ec) co_return end;
  probed_ = true;
  caps_ = judge_options(end.status, field(res, "Tus-Extension"), field(res, "Tus-Checksum-Algorithm"));
  co_return end;
}

/// Creates the upload if there is none (or it expired, or the server lost it), then asks the
/// server's offset with HEAD and acknowledges it.
asio::awaitable<attempt_end> upload_run::find_offset(const net::endpoint_url& create) {
  auto& r = cx_.r;
  string_response res;
  attempt_end end;
  for (int fresh = 0; fresh < 2; ++fresh) {
    if (!r.upload_url.empty() && upload_expired(r.upload_expires_ms, now_ms())) {
      // The server said it would drop the upload by now: appending to it is pointless.
      if (auto ec = forget_upload("the upload expired on the server (Upload-Expires)")) co_return failure(ec);
    }
    if (r.upload_url.empty()) {
      const auto name = std::filesystem::path(r.file).filename().string();
      header_list creation{{"Upload-Length", std::to_string(r.source_size)},
                           {"Upload-Metadata", "filename " + net::detail::base64(name)}};
      end = co_await tus_call(http::verb::post, create, std::move(creation), res);
      if (end.ec) co_return end;
      const std::string where = "POST " + create.redacted();
      const auto v = judge_creation(end.status, field(res, http::field::location), create);
      if (v.kind != tus_verdict::proceed) co_return judged(end, v, where, res);
      r.upload_url = v.location->to_string();
      note_expiry(r, res);
      r.offset = 0;
      r.digests.clear();
      if (auto ec = cx_.save()) co_return failure(ec, "cannot write the state record: " + describe_failure(ec));
    }
    const auto upload = net::parse_url(r.upload_url);
    if (!upload) {
      if (auto ec = forget_upload("the recorded upload URL does not parse")) co_return failure(ec);
      continue;
    }
    const std::string where_head = "HEAD " + upload->redacted();
    header_list no_fields;
    end = co_await tus_call(http::verb::head, *upload, std::move(no_fields), res);
    if (end.ec) co_return end;
    const auto v = judge_head(end.status, field_if(res, "Upload-Offset"), field_if(res, "Upload-Length"), r.source_size);
    if (v.kind == tus_verdict::forget) {
      if (auto ec = forget_upload(v.why)) co_return failure(ec);
      continue;
    }
    if (v.kind != tus_verdict::proceed) co_return judged(end, v, where_head, res);
    if (auto ec = acknowledge(v.offset)) co_return failure(ec);
    co_return end;
  }
  attempt_end lost;
  lost.ec = make_error_code(error::protocol_error);
  lost.message = "the server lost the upload twice in a row";
  co_return lost;
}

asio::awaitable<attempt_end> upload_run::tus_attempt() {
  auto& r = cx_.r;
  const auto create = net::parse_url(r.url);
  if (!create) co_return failure(create.error(), "the URL does not parse");
  attempt_end end;
  if (!probed_) {
    end = co_await probe();
    if (end.ec) co_return end;
  }
  end = co_await find_offset(*create);
  if (end.ec) co_return end;
  const auto upload = net::parse_url(r.upload_url);
  if (!upload) co_return failure(make_error_code(error::protocol_error), "the upload URL does not parse");
  const std::string where = "PATCH " + upload->redacted();
  const auto chunk = r.chunk_size ? r.chunk_size : cx_.opts.upload_chunk_size;
  string_response res;
  while (r.offset < r.source_size) {
    const auto begin = r.offset;
    const auto stop = std::min(r.source_size, begin + chunk);
    header_list f = {{"Upload-Offset", std::to_string(begin)}, {"Content-Type", "application/offset+octet-stream"}};
    if (caps_.checksum) {
      error_code hec;
      const auto digest = hash_range(begin, stop, hec, *caps_.checksum);
      if (hec) co_return failure(hec, "reading the source: " + describe_failure(hec));
      const char* name = *caps_.checksum == hash_algorithm::sha1 ? "sha1 " : "sha256 ";
      f.emplace_back("Upload-Checksum", name + hex_to_base64(digest));
    }
    end = co_await tus_call(http::verb::patch, *upload, std::move(f), res, begin, stop);
    if (end.ec) co_return end;
    const auto v = judge_patch(end.status, field_if(res, "Upload-Offset"), begin, stop);
    if (v.kind == tus_verdict::forget) {
      if (auto ec = forget_upload(v.why)) co_return failure(ec);
      end.ec = v.ec;
      end.message = where + ": the upload is gone";
      co_return end;
    }
    if (v.kind != tus_verdict::proceed) co_return judged(end, v, where, res);
    note_expiry(r, res);
    if (auto ec = acknowledge(v.offset)) co_return failure(ec);
    end.progressed = true;
  }
  end.ec = {};
  end.retry_after.reset();
  end.complete = true;
  co_return end;
}

asio::awaitable<void> upload_run::terminate() {
  const auto upload = net::parse_url(cx_.r.upload_url);
  if (!upload) co_return;
  const auto stop = std::exchange(cx_.j.stop, stop_kind::none);  // the cancel must not stop these requests
  if (!probed_) co_await probe();
  if (caps_.termination) {
    string_response res;
    header_list no_fields;
    co_await tus_call(http::verb::delete_, *upload, std::move(no_fields), res);
  }
  cx_.j.stop = stop;
}

}  // namespace tether::transfer::detail
