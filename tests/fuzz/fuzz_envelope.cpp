// Envelope decoding: any bytes, as JSON text and as CBOR, never crash or recurse without end;
// what decodes re-encodes and decodes to the same envelope.
#include <tether/net/src.hpp>
#include <tether/ws/impl/envelope.ipp>
#include <tether/ws/envelope.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (auto f : {tether::ws::wire_format::json_text, tether::ws::wire_format::cbor_binary}) {
    auto e = tether::ws::decode_envelope(in, f);
    if (!e) continue;
    auto again = tether::ws::decode_envelope(tether::ws::encode_envelope(*e, f), f);
    if (!again || again->type != e->type || again->id != e->id || again->reply_to != e->reply_to) std::abort();
  }
  return 0;
}
