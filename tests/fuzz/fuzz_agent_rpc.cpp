// Agent requests from a client: any bytes as one request line. Every refusal is a JSON-RPC error
// with a message; a call's parameters decode or are refused with a reason, for every method;
// an accepted download encodes and decodes to the same request.
#include <tether/net/src.hpp>
#include <tether/transfer/impl/file.ipp>
#include <tether/transfer/impl/record.ipp>
#include <tether/transfer/impl/agent_protocol.ipp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ag = tether::transfer::detail::agent;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parsed = ag::parse_call(in, 64u << 10);
  if (auto* e = std::get_if<ag::rpc_error>(&parsed)) {
    if (e->message.empty()) std::abort();
    const auto line = ag::error_line(*e);
    if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) std::abort();
    return 0;
  }
  const auto& c = std::get<ag::rpc_call>(parsed);
  if (!c.id.is_string() && !c.id.is_number_integer()) std::abort();
  std::string why;
  for (auto k : {tether::transfer::kind::download, tether::transfer::kind::upload}) {
    why.clear();
    auto a = ag::decode_add(c.params, k, why);
    if (!a) {
      if (why.empty()) std::abort();
      continue;
    }
    std::string why2;
    auto again = ag::decode_add(ag::encode_add(k, a->id, a->req), k, why2);
    if (!again || again->id != a->id || again->req.url != a->req.url || again->req.file != a->req.file ||
        again->req.headers != a->req.headers)
      std::abort();
  }
  why.clear();
  if (!ag::decode_id(c.params, why) && why.empty()) std::abort();
  why.clear();
  if (!ag::decode_session(c.params, why) && why.empty()) std::abort();
  why.clear();
  if (auto e = ag::decode_events(c.params, std::chrono::milliseconds{60'000}, why); e) {
    if (e->wait > std::chrono::milliseconds{60'000}) std::abort();
  } else if (why.empty()) {
    std::abort();
  }
  const auto line = ag::result_line(c.id, c.params);
  if (line.find('\n') != line.size() - 1) std::abort();
  return 0;
}
