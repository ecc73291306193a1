// Content-Range, Upload-Offset/Content-Length-style integers and entity tags: any text; what
// parses is self-consistent.
#include <tether/net/src.hpp>
#include <tether/net/http.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto cr = tether::net::parse_content_range(in)) {
    if (cr->satisfied) {
      if (cr->last < cr->first) std::abort();
      if (cr->complete_length && cr->last >= *cr->complete_length) std::abort();
      if (cr->length() == 0) std::abort();
    } else if (!cr->complete_length) {
      std::abort();
    }
    if (cr->last > static_cast<std::uint64_t>(INT64_MAX)) std::abort();
  }
  if (auto n = tether::net::parse_decimal(in)) {
    if (*n > static_cast<std::uint64_t>(INT64_MAX)) std::abort();
    // What parses prints back the same, leading zeros and spaces aside.
    const auto text = std::to_string(*n);
    if (in.find(text) == std::string_view::npos && in.find_first_not_of(" \t0") != std::string_view::npos) std::abort();
  }
  if (tether::net::is_strong_etag(in) && in.find("W/") == 0) std::abort();
  return 0;
}
