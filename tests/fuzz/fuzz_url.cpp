// URL parsing: any text; a parsed URL prints and re-parses to the same parts.
#include <tether/net/src.hpp>
#include <tether/net/url.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto u = tether::net::parse_url(in);
  if (!u) return 0;
  auto again = tether::net::parse_url(u->to_string());
  if (!again || again->host != u->host || again->port != u->port || again->target != u->target) std::abort();
  (void)u->redacted();
  (void)tether::net::resolve_url(*u, in);
  return 0;
}
