// tether/transfer/detail/agent_protocol.hpp: the agent's wire protocol without I/O: JSON-RPC 2.0,
// one object per line. Parsing a line into a call (or the error to answer), the answers'
// lines, and the strict decoding of each method's parameters. Tested by tables and fuzzed.
//
// Methods (params in braces; every call needs an id, batches and notifications are refused):
//   attach {session}                      -> {session, cursor}: binds the connection to a session
//   download|upload {id, url, file, headers?, sha256?, protocol?, chunk_size?, bandwidth_limit?}
//                                         -> {id, status}: the transfer is the session's from now on
//   get {id} -> info          list {} -> [info]        (headers are never returned)
//   cancel|pause|resume {id} -> {id}
//   ack {id} -> {id}: the session has its result; the agent forgets the transfer
//   remove {id} -> {id}: cancels if running and forgets
//   events {after, wait_ms?} -> {events: [...], cursor, gap}: events after the cursor, waiting up
//                                  to wait_ms for one; gap: some were lost (agent restarted,
//                                  or the session's queue overflowed): read the state with list.
#pragma once

#include <tether/net/error.hpp>
#include <tether/transfer/types.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace tether::transfer::detail::agent {

using json = nlohmann::json;

/// JSON-RPC error codes: the spec's, then the agent's own (-32000 and below).
enum class rpc_code : int {
  parse_error = -32700,
  invalid_request = -32600,
  method_not_found = -32601,
  invalid_params = -32602,
  internal_error = -32603,
  not_attached = -32001,    ///< the method needs `attach` first
  not_found = -32002,       ///< no transfer of this session has that id
  id_in_use = -32003,       ///< another session's transfer has that id
  limit_reached = -32004,   ///< too many transfers, sessions or requests in flight
  refused = -32005,         ///< the manager refused (e.g. another process runs that id)
  too_large = -32006,       ///< the request line is longer than allowed
};

struct rpc_error {
  rpc_code code = rpc_code::internal_error;
  std::string message;
  json id = nullptr;  ///< the call's id when it could be read, else null
};

struct rpc_call {
  json id;  ///< a string or an integer
  std::string method;
  json params = json::object();
};

/// One request line (without its newline), at most `max_bytes` long. Never throws.
TETHER_DECL std::variant<rpc_call, rpc_error> parse_call(std::string_view line, std::size_t max_bytes);

/// The answer lines, each ending in '\n'.
TETHER_DECL std::string result_line(const json& id, const json& result);
TETHER_DECL std::string error_line(const rpc_error& e);

/// Parameters of download and upload.
struct add_params {
  std::string id;
  request req;
};
/// Strict: `why` names the first problem (unknown fields are refused too, so a typo is not
/// silently ignored). The file must be an absolute path: the agent's working directory is not
/// the caller's.
TETHER_DECL std::optional<add_params> decode_add(const json& params, kind k, std::string& why);
/// {id}: a non-empty string of at most 1024 bytes.
TETHER_DECL std::optional<std::string> decode_id(const json& params, std::string& why);
/// {session}: 1 to 128 of letters, digits and "._-@".
TETHER_DECL std::optional<std::string> decode_session(const json& params, std::string& why);
struct events_params {
  std::uint64_t after = 0;
  std::chrono::milliseconds wait{0};
};
/// {after, wait_ms?}; wait_ms is capped at `max_wait`.
TETHER_DECL std::optional<events_params> decode_events(const json& params, std::chrono::milliseconds max_wait,
                                                      std::string& why);

/// The request as the agent keeps it and as download/upload send it (headers included: only
/// the agent's records and the request line hold them).
TETHER_DECL json encode_add(kind k, const std::string& id, const request& r);

/// A result or info as answered to clients (no headers, URLs redacted as the manager keeps them).
TETHER_DECL json encode_result_full(const result& r);
TETHER_DECL std::optional<result> decode_result_full(const json& j, std::string& why);
TETHER_DECL json encode_info(const info& i);
TETHER_DECL std::optional<info> decode_info(const json& j, std::string& why);

}  // namespace tether::transfer::detail::agent
