// State records from disk: any bytes; a record that decodes encodes and decodes to the same.
#include <tether/net/src.hpp>
#include <tether/transfer/impl/file.ipp>
#include <tether/transfer/impl/record.ipp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace td = tether::transfer::detail;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto r = td::decode_record(in, why);
  if (!r) {
    if (why.empty()) std::abort();  // every refusal names its reason
    return 0;
  }
  const auto text = td::encode_record(*r);
  std::string why2;
  auto again = td::decode_record(text, why2);
  if (!again) std::abort();
  if (td::encode_record(*again) != text) std::abort();
  if (td::file_stem(r->id).empty() || td::file_stem(r->id) == "." || td::file_stem(r->id) == "..") std::abort();
  return 0;
}
