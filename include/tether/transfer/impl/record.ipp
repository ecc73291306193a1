// tether/transfer/impl/record.ipp: the record's JSON encoding and its strict, validating decoder.
#pragma once

#include <tether/net/url.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/json_reader.hpp>
#include <tether/transfer/detail/record.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <nlohmann/json.hpp>

namespace tether::transfer {

const char* to_string(status s) noexcept {
  switch (s) {
    case status::queued: return "queued";
    case status::running: return "running";
    case status::waiting: return "waiting";
    case status::paused: return "paused";
    case status::succeeded: return "succeeded";
    case status::failed: return "failed";
    case status::cancelled: return "cancelled";
  }
  return "unknown";
}
const char* to_string(kind k) noexcept { return k == kind::download ? "download" : "upload"; }
const char* to_string(upload_protocol p) noexcept {
  switch (p) {
    case upload_protocol::tus: return "tus";
    case upload_protocol::put: return "put";
    case upload_protocol::post: return "post";
  }
  return "unknown";
}

namespace detail {

using json = nlohmann::json;

namespace {

constexpr status all_status[] = {status::queued, status::running, status::waiting, status::paused,
                                 status::succeeded, status::failed, status::cancelled};
constexpr kind all_kinds[] = {kind::download, kind::upload};
constexpr upload_protocol all_protocols[] = {upload_protocol::tus, upload_protocol::put, upload_protocol::post};
constexpr hash_algorithm chunk_digests_known[] = {hash_algorithm::xxh3_128, hash_algorithm::sha256};
constexpr outcome all_outcomes[] = {outcome::success, outcome::rejected, outcome::retry_later, outcome::failed};

// Error codes survive a restart for the categories a transfer produces.
const boost::system::error_category* category_named(std::string_view name) {
  const boost::system::error_category* cats[] = {
      &tether::error_category(),
      &boost::system::system_category(),
      &boost::system::generic_category(),
      &boost::asio::error::get_misc_category(),
      &boost::asio::error::get_netdb_category(),
      &boost::asio::error::get_addrinfo_category(),
      &boost::asio::error::get_ssl_category(),
      &boost::asio::ssl::error::get_stream_category(),
      &make_error_code(boost::beast::http::error::end_of_stream).category(),
  };
  for (auto c : cats)
    if (name == c->name()) return c;
  return nullptr;
}

}  // namespace

json encode_result(const result& r) {
  json j = {{"outcome", net::to_string(r.outcome)},
            {"message", r.message},
            {"http_status", r.http_status},
            {"final_url", r.final_url},
            {"bytes_on_disk", r.bytes_on_disk},
            {"bytes_received", r.bytes_received},
            {"attempts", r.attempts},
            {"restarts", r.restarts},
            {"connections_opened", r.connections_opened},
            {"connections_reused", r.connections_reused},
            {"tls_resumed", r.tls_resumed},
            {"location", r.location}};
  if (!r.sha256.empty()) j["sha256"] = r.sha256;
  if (r.error) j["error"] = {{"category", r.error.category().name()}, {"value", r.error.value()}};
  if (r.retry_after) j["retry_after_s"] = r.retry_after->count();
  if (r.bytes_expected) j["bytes_expected"] = *r.bytes_expected;
  return j;
}

std::optional<result> decode_result(const json& j, const record& r, std::string& why) {
  if (!j.is_object()) {
    why = "\"result\" is not an object";
    return std::nullopt;
  }
  reader rd{j, why, "result: "};
  result res;
  res.id = r.id;
  res.kind = r.kind;
  res.file = r.file;
  res.outcome = rd.enumeration("outcome", all_outcomes);
  res.message = rd.str("message", false);
  res.http_status = rd.u32("http_status");
  res.final_url = rd.str("final_url", false);
  res.sha256 = rd.str("sha256", false);
  res.bytes_on_disk = rd.u64("bytes_on_disk", false);
  res.bytes_received = rd.u64("bytes_received", false);
  res.attempts = rd.u32("attempts");
  res.restarts = rd.u32("restarts");
  res.connections_opened = rd.u32("connections_opened");
  res.connections_reused = rd.u32("connections_reused");
  res.tls_resumed = rd.u32("tls_resumed");
  res.location = rd.str("location", false);
  if (j.contains("bytes_expected")) res.bytes_expected = rd.u64("bytes_expected");
  if (j.contains("retry_after_s")) res.retry_after = std::chrono::seconds{rd.i64("retry_after_s")};
  if (auto e = j.find("error"); e != j.end()) {
    if (!e->is_object()) {
      rd.fail("\"error\" is not an object");
    } else {
      reader er{*e, why, "result.error: "};
      const auto cat = er.str("category");
      const auto value = er.i64("value");
      if (why.empty()) {
        if (auto c = category_named(cat); c && value > 0 && value <= INT32_MAX)
          res.error = error_code(static_cast<int>(value), *c);
        else
          rd.fail("\"error\" names an unknown category or value");
      }
    }
  }
  if (!why.empty()) return std::nullopt;
  return res;
}

std::string encode_record(const record& r) {
  json headers = json::array();
  for (const auto& [k, v] : r.headers) headers.push_back({k, v});
  json j = {{"schema", record_schema},
            {"id", r.id},
            {"kind", to_string(r.kind)},
            {"status", to_string(r.status)},
            {"url", r.url},
            {"final_url", r.final_url},
            {"file", r.file},
            {"headers", std::move(headers)},
            {"chunk_size", r.chunk_size},
            {"earliest_start_ms", r.earliest_start_ms},
            {"bandwidth_limit", r.bandwidth_limit},
            {"etag", r.etag},
            {"last_modified", r.last_modified},
            {"content_encoding", r.content_encoding},
            {"offset", r.offset},
            {"checkpoint_bytes", r.checkpoint_bytes},
            {"chunk_digest", to_string(r.chunk_digest)},
            {"digests", r.digests},
            {"source_size", r.source_size},
            {"source_mtime_ns", r.source_mtime_ns},
            {"upload_url", r.upload_url},
            {"upload_expires_ms", r.upload_expires_ms},
            {"bytes_received", r.bytes_received},
            {"attempts", r.attempts},
            {"restarts", r.restarts},
            {"connections_opened", r.connections_opened},
            {"connections_reused", r.connections_reused},
            {"tls_resumed", r.tls_resumed},
            {"created_ms", r.created_ms},
            {"updated_ms", r.updated_ms},
            {"result_delivered", r.result_delivered}};
  // Only what applies: an expected digest when one was given, the protocol of uploads.
  if (!r.sha256_expected.empty()) j["sha256_expected"] = r.sha256_expected;
  if (r.kind == kind::upload) j["protocol"] = to_string(r.protocol);
  if (!r.chunks.empty()) j["chunks"] = r.chunks;
  if (r.ranges_refused) j["ranges_refused"] = true;
  if (r.length) j["length"] = *r.length;
  if (r.result) j["result"] = encode_result(*r.result);
  if (r.produced)
    j["produced"] = {{"size", r.produced->size}, {"mtime_ns", r.produced->mtime_ns}, {"inode", r.produced->inode}};
  return j.dump(2) + "\n";
}

boost::system::result<record> decode_record(std::string_view text, std::string& why) {
  why.clear();
  // Records are small; a huge one is damage, not data (and bounds what a hostile file costs).
  if (text.size() > (1u << 20)) {
    why = "record larger than 1 MiB";
    return make_error_code(error::state_corrupt);
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = j.is_discarded() ? "not valid JSON" : "not a JSON object";
    return make_error_code(error::state_corrupt);
  }
  reader rd{j, why, ""};
  const auto schema = rd.i64("schema");
  if (why.empty() && schema > record_schema) {
    why = "written by a newer version (schema " + std::to_string(schema) + ")";
    return make_error_code(error::state_version);
  }
  if (why.empty() && schema != record_schema && schema != 1) rd.fail("unknown schema " + std::to_string(schema));
  record r;
  // Schema 1 knew one chunk digest; its records stay readable and verifiable.
  r.chunk_digest = schema == 1 ? hash_algorithm::sha256 : rd.enumeration("chunk_digest", chunk_digests_known);
  r.id = rd.str("id");
  r.kind = rd.enumeration("kind", all_kinds);
  r.status = rd.enumeration("status", all_status);
  r.url = rd.str("url");
  r.final_url = rd.str("final_url", false);
  r.file = rd.str("file");
  if (auto h = rd.field("headers", false)) {
    if (!h->is_array()) rd.fail("\"headers\" is not an array");
    else
      for (const auto& kv : *h) {
        if (!kv.is_array() || kv.size() != 2 || !kv[0].is_string() || !kv[1].is_string()) {
          rd.fail("\"headers\" holds something other than [name, value] pairs");
          break;
        }
        r.headers.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
      }
  }
  r.sha256_expected = rd.str("sha256_expected", false);
  r.protocol = j.contains("protocol") ? rd.enumeration("protocol", all_protocols) : upload_protocol::tus;
  r.chunk_size = rd.u64("chunk_size", false);
  r.earliest_start_ms = rd.i64("earliest_start_ms", false);
  r.bandwidth_limit = rd.u64("bandwidth_limit", false);
  r.etag = rd.str("etag", false);
  r.last_modified = rd.str("last_modified", false);
  r.content_encoding = rd.str("content_encoding", false);
  if (j.contains("length") && !j["length"].is_null()) r.length = rd.u64("length");
  r.offset = rd.u64("offset");
  r.checkpoint_bytes = rd.u64("checkpoint_bytes");
  if (auto d = rd.field("digests", true)) {
    if (!d->is_array()) rd.fail("\"digests\" is not an array");
    else
      for (const auto& s : *d) {
        if (!s.is_string() || !is_digest_hex(s.get_ref<const std::string&>(), r.chunk_digest)) {
          rd.fail(std::string("\"digests\" holds something other than ") + to_string(r.chunk_digest) + " hex digests");
          break;
        }
        r.digests.push_back(s.get<std::string>());
      }
  }
  if (auto c = rd.field("chunks", false)) {
    if (!c->is_array()) rd.fail("\"chunks\" is not an array");
    else
      for (const auto& s : *c) {
        if (!s.is_string() ||
            !(s.get_ref<const std::string&>().empty() || is_digest_hex(s.get_ref<const std::string&>(), r.chunk_digest))) {
          rd.fail(std::string("\"chunks\" holds something other than ") + to_string(r.chunk_digest) +
                  " hex digests and empty strings");
          break;
        }
        r.chunks.push_back(s.get<std::string>());
      }
  }
  r.ranges_refused = rd.boolean("ranges_refused");
  r.source_size = rd.u64("source_size", false);
  r.source_mtime_ns = rd.i64("source_mtime_ns", false);
  r.upload_url = rd.str("upload_url", false);
  r.upload_expires_ms = rd.i64("upload_expires_ms", false);
  r.bytes_received = rd.u64("bytes_received", false);
  r.attempts = rd.u32("attempts");
  r.restarts = rd.u32("restarts");
  r.connections_opened = rd.u32("connections_opened");
  r.connections_reused = rd.u32("connections_reused");
  r.tls_resumed = rd.u32("tls_resumed");
  r.created_ms = rd.i64("created_ms");
  r.updated_ms = rd.i64("updated_ms");
  r.result_delivered = rd.boolean("result_delivered");
  if (auto p = rd.field("produced", false); p && !p->is_null()) {
    if (!p->is_object()) {
      rd.fail("\"produced\" is not an object");
    } else {
      reader pr{*p, why, "produced: "};
      r.produced = file_identity{pr.u64("size"), pr.i64("mtime_ns"), pr.u64("inode")};
    }
  }
  if (!why.empty()) return make_error_code(error::state_corrupt);

  if (auto res = j.find("result"); res != j.end() && !res->is_null()) {
    r.result = decode_result(*res, r, why);
    if (!r.result) return make_error_code(error::state_corrupt);
  }

  // Consistency: what the checkpoint claims must add up.
  auto bad = [&](std::string what) {
    why = std::move(what);
    return make_error_code(error::state_corrupt);
  };
  if (r.id.empty()) return bad("empty \"id\"");
  if (r.url.empty()) return bad("empty \"url\"");
  // Every URL is parsed here, once, so that no later code can meet one that does not parse.
  auto http_url = [](const std::string& candidate) {
    auto u = net::parse_url(candidate);
    return u && !(u->scheme == net::scheme::ws || u->scheme == net::scheme::wss);
  };
  if (!http_url(r.url)) return bad("\"url\" is not a valid http(s) URL");
  if (!r.final_url.empty() && !http_url(r.final_url)) return bad("\"final_url\" is not a valid http(s) URL");
  if (!r.upload_url.empty() && !http_url(r.upload_url)) return bad("\"upload_url\" is not a valid http(s) URL");
  if (r.file.empty() || r.file.front() != '/') return bad("\"file\" is not an absolute path");
  if (!r.sha256_expected.empty() && !is_sha256_hex(r.sha256_expected)) return bad("\"sha256_expected\" is not 64 hex digits");
  if (r.checkpoint_bytes < (64u << 10) || r.checkpoint_bytes % (64u << 10) != 0)
    return bad("\"checkpoint_bytes\" is not a multiple of 64 KiB");
  if (r.length && r.offset > *r.length) return bad("\"offset\" is beyond \"length\"");
  const bool complete = r.length && r.offset == *r.length;
  const auto full_chunks = r.offset / r.checkpoint_bytes;
  const auto expected_digests = full_chunks + ((complete && r.offset % r.checkpoint_bytes) ? 1 : 0);
  if (!r.chunks.empty()) {
    // A segmented download: the durable bytes are the chunks that have a digest.
    if (r.kind != kind::download || !r.length) return bad("\"chunks\" without a download of known \"length\"");
    if (!r.digests.empty()) return bad("both \"chunks\" and \"digests\"");
    const auto count = (*r.length + r.checkpoint_bytes - 1) / r.checkpoint_bytes;
    if (r.chunks.size() != count)
      return bad("\"chunks\" has " + std::to_string(r.chunks.size()) + " entries for length " +
                 std::to_string(*r.length) + " (expected " + std::to_string(count) + ")");
    if (r.offset != held_bytes(r.chunks, r.checkpoint_bytes, *r.length))
      return bad("\"offset\" is not the size of the chunks held");
  } else if (r.kind == kind::download) {
    if (!complete && r.offset % r.checkpoint_bytes != 0) return bad("\"offset\" is not at a checkpoint boundary");
    if (r.digests.size() != expected_digests)
      return bad("\"digests\" has " + std::to_string(r.digests.size()) + " entries for offset " +
                 std::to_string(r.offset) + " (expected " + std::to_string(expected_digests) + ")");
  } else if (r.digests.size() > expected_digests) {
    return bad("\"digests\" has more entries than the offset covers");
  }
  if ((r.status == status::succeeded) != (r.result && r.result->outcome == outcome::success))
    return bad("\"status\" and \"result\" disagree");
  return r;
}

std::uint64_t held_bytes(const std::vector<std::string>& chunks, std::uint64_t chunk, std::uint64_t length) noexcept {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].empty()) continue;
    const auto begin = i * chunk;
    if (begin < length) n += std::min(chunk, length - begin);
  }
  return n;
}

std::string file_stem(std::string_view id) {
  std::string out;
  for (char ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
        (c == '.' && !out.empty())) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  if (out.size() > 160) out = out.substr(0, 120) + "~" + sha256_hex(id).substr(0, 32);
  return out;
}

}  // namespace detail
}  // namespace tether::transfer
