// tether/transfer/impl/agent_protocol.ipp: JSON-RPC lines and strict parameter decoding.
#pragma once

#include <tether/net/detail/json_depth.hpp>
#include <tether/transfer/detail/agent_protocol.hpp>
#include <tether/transfer/detail/json_reader.hpp>
#include <tether/transfer/detail/record.hpp>

#include <algorithm>
#include <initializer_list>

namespace tether::transfer::detail::agent {

namespace {

constexpr std::size_t max_depth = 16;
constexpr std::size_t max_id_bytes = 1024;
constexpr std::size_t max_headers = 64;

rpc_error bad(rpc_code c, std::string m, json id = nullptr) { return rpc_error{c, std::move(m), std::move(id)}; }

// The first member of `j` that `allowed` does not name, if any.
std::optional<std::string> unknown_field(const json& j, std::initializer_list<const char*> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; })) return it.key();
  return std::nullopt;
}

bool params_object(const json& p, std::initializer_list<const char*> allowed, std::string& why) {
  if (!p.is_object()) {
    why = "params must be an object";
    return false;
  }
  if (auto u = unknown_field(p, allowed)) {
    why = "unknown parameter \"" + *u + "\"";
    return false;
  }
  return true;
}

bool valid_id_text(const std::string& id, std::string& why) {
  if (id.empty() || id.size() > max_id_bytes) {
    why = "\"id\" must be 1 to 1024 bytes";
    return false;
  }
  return true;
}

constexpr upload_protocol all_protocols[] = {upload_protocol::tus, upload_protocol::put, upload_protocol::post};
constexpr status all_status[] = {status::queued, status::running, status::waiting, status::paused,
                                 status::succeeded, status::failed, status::cancelled};
constexpr kind all_kinds[] = {kind::download, kind::upload};

std::int64_t to_unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::variant<rpc_call, rpc_error> parse_call(std::string_view line, std::size_t max_bytes) {
  if (line.size() > max_bytes)
    return bad(rpc_code::too_large, "request of " + std::to_string(line.size()) + " bytes; at most " +
                                        std::to_string(max_bytes) + " are accepted");
  if (!net::detail::json_depth_within(line, max_depth))
    return bad(rpc_code::parse_error, "request nested deeper than " + std::to_string(max_depth) + " levels");
  auto j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad(rpc_code::parse_error, "request is not JSON");
  if (j.is_array()) return bad(rpc_code::invalid_request, "batches are not accepted: one request per line");
  if (!j.is_object()) return bad(rpc_code::invalid_request, "a request is a JSON object");
  json id = nullptr;
  if (auto it = j.find("id"); it != j.end()) {
    if (it->is_string() || it->is_number_integer()) id = *it;
    else return bad(rpc_code::invalid_request, "\"id\" must be a string or an integer");
  } else {
    return bad(rpc_code::invalid_request, "notifications are not accepted: every request needs an \"id\"");
  }
  if (auto v = j.find("jsonrpc"); v == j.end() || *v != "2.0")
    return bad(rpc_code::invalid_request, "\"jsonrpc\" must be \"2.0\"", id);
  auto m = j.find("method");
  if (m == j.end() || !m->is_string() || m->get_ref<const std::string&>().empty())
    return bad(rpc_code::invalid_request, "\"method\" must be a non-empty string", id);
  if (auto u = unknown_field(j, {"jsonrpc", "id", "method", "params"}))
    return bad(rpc_code::invalid_request, "unknown member \"" + *u + "\"", id);
  rpc_call c;
  c.id = std::move(id);
  c.method = m->get<std::string>();
  if (auto p = j.find("params"); p != j.end()) {
    if (!p->is_object()) return bad(rpc_code::invalid_params, "\"params\" must be an object", c.id);
    c.params = std::move(*p);
  }
  return c;
}

std::string result_line(const json& id, const json& result) {
  json j = {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
  auto s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s += '\n';
  return s;
}

std::string error_line(const rpc_error& e) {
  json j = {{"jsonrpc", "2.0"},
            {"id", e.id},
            {"error", {{"code", static_cast<int>(e.code)}, {"message", e.message}}}};
  auto s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s += '\n';
  return s;
}

std::optional<std::string> decode_id(const json& params, std::string& why) {
  if (!params_object(params, {"id"}, why)) return std::nullopt;
  reader rd{params, why, ""};
  auto id = rd.str("id");
  if (!why.empty() || !valid_id_text(id, why)) return std::nullopt;
  return id;
}

std::optional<std::string> decode_session(const json& params, std::string& why) {
  if (!params_object(params, {"session"}, why)) return std::nullopt;
  reader rd{params, why, ""};
  auto s = rd.str("session");
  if (!why.empty()) return std::nullopt;
  const bool ok = !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '-' || ch == '@';
  });
  if (!ok) {
    why = "\"session\" must be 1 to 128 letters, digits or ._-@";
    return std::nullopt;
  }
  return s;
}

std::optional<events_params> decode_events(const json& params, std::chrono::milliseconds max_wait, std::string& why) {
  if (!params_object(params, {"after", "wait_ms"}, why)) return std::nullopt;
  reader rd{params, why, ""};
  events_params e;
  e.after = rd.u64("after");
  const auto w = rd.u64("wait_ms", false);
  if (!why.empty()) return std::nullopt;
  e.wait = std::chrono::milliseconds{static_cast<std::int64_t>(std::min<std::uint64_t>(w, static_cast<std::uint64_t>(max_wait.count())))};
  return e;
}

std::optional<add_params> decode_add(const json& params, kind k, std::string& why) {
  if (!params_object(params, {"id", "url", "file", "headers", "sha256", "protocol", "chunk_size", "bandwidth_limit"},
                     why))
    return std::nullopt;
  reader rd{params, why, ""};
  add_params a;
  a.id = rd.str("id");
  a.req.url = rd.str("url");
  const auto file = rd.str("file");
  a.req.sha256 = rd.str("sha256", false);
  a.req.chunk_size = rd.u64("chunk_size", false);
  a.req.bandwidth_limit = rd.u64("bandwidth_limit", false);
  if (params.contains("protocol")) {
    if (k != kind::upload) rd.fail("\"protocol\" is for uploads");
    a.req.protocol = rd.enumeration("protocol", all_protocols);
  }
  if (!why.empty() || !valid_id_text(a.id, why)) return std::nullopt;
  if (a.req.url.empty() || a.req.url.size() > 8192) {
    why = "\"url\" must be 1 to 8192 bytes";
    return std::nullopt;
  }
  if (file.empty() || file.front() != '/') {
    why = "\"file\" must be an absolute path (the agent does not share the caller's working directory)";
    return std::nullopt;
  }
  a.req.file = file;
  if (auto h = params.find("headers"); h != params.end()) {
    if (!h->is_array() || h->size() > max_headers) {
      why = "\"headers\" must be an array of at most 64 [name, value] pairs";
      return std::nullopt;
    }
    for (const auto& p : *h) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string() ||
          p[0].get_ref<const std::string&>().empty()) {
        why = "\"headers\" must hold [name, value] pairs of strings";
        return std::nullopt;
      }
      a.req.headers.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    }
  }
  return a;
}

json encode_add(kind k, const std::string& id, const request& r) {
  json headers = json::array();
  for (const auto& [n, v] : r.headers) headers.push_back({n, v});
  json j = {{"id", id}, {"url", r.url}, {"file", r.file.string()}, {"headers", std::move(headers)}};
  if (!r.sha256.empty()) j["sha256"] = r.sha256;
  if (k == kind::upload) j["protocol"] = to_string(r.protocol);
  if (r.chunk_size) j["chunk_size"] = r.chunk_size;
  if (r.bandwidth_limit) j["bandwidth_limit"] = r.bandwidth_limit;
  return j;
}

json encode_result_full(const result& r) {
  auto j = encode_result(r);
  j["id"] = r.id;
  j["kind"] = to_string(r.kind);
  j["file"] = r.file.string();
  return j;
}

std::optional<result> decode_result_full(const json& j, std::string& why) {
  if (!j.is_object()) {
    why = "a result must be an object";
    return std::nullopt;
  }
  reader rd{j, why, "result: "};
  record rec;
  rec.id = rd.str("id");
  rec.kind = rd.enumeration("kind", all_kinds);
  rec.file = rd.str("file", false);
  if (!why.empty()) return std::nullopt;
  return decode_result(j, rec, why);
}

json encode_info(const info& i) {
  json j = {{"id", i.id},
            {"kind", to_string(i.kind)},
            {"status", to_string(i.status)},
            {"url", i.url},
            {"file", i.file.string()},
            {"bytes_durable", i.bytes_durable},
            {"created_ms", to_unix_ms(i.created)},
            {"updated_ms", to_unix_ms(i.updated)}};
  if (i.bytes_total) j["bytes_total"] = *i.bytes_total;
  if (i.result) j["result"] = encode_result_full(*i.result);
  if (!i.problem.empty()) j["problem"] = i.problem;
  return j;
}

std::optional<info> decode_info(const json& j, std::string& why) {
  if (!j.is_object()) {
    why = "an info must be an object";
    return std::nullopt;
  }
  reader rd{j, why, "info: "};
  info i;
  i.id = rd.str("id");
  i.kind = rd.enumeration("kind", all_kinds);
  i.status = rd.enumeration("status", all_status);
  i.url = rd.str("url", false);
  i.file = rd.str("file", false);
  i.bytes_durable = rd.u64("bytes_durable", false);
  if (j.contains("bytes_total")) i.bytes_total = rd.u64("bytes_total");
  i.created = std::chrono::system_clock::time_point{std::chrono::milliseconds{rd.i64("created_ms", false)}};
  i.updated = std::chrono::system_clock::time_point{std::chrono::milliseconds{rd.i64("updated_ms", false)}};
  i.problem = rd.str("problem", false);
  if (!why.empty()) return std::nullopt;
  if (auto r = j.find("result"); r != j.end()) {
    i.result = decode_result_full(*r, why);
    if (!i.result) return std::nullopt;
  }
  return i;
}

}  // namespace tether::transfer::detail::agent
