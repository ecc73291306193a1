// Retry-After and HTTP-date parsing: any text; results stay within the cap.
#include <tether/net/src.hpp>
#include <tether/net/retry.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto now = std::chrono::system_clock::from_time_t(1700000000);
  auto r = tether::net::parse_retry_after(in, now, std::chrono::seconds(600));
  if (r && (r->count() < 0 || r->count() > 600)) std::abort();
  (void)tether::net::parse_http_date(in);
  return 0;
}
