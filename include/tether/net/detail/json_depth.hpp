// tether/net/detail/json_depth.hpp: bounds the nesting of JSON text from a peer before a parser
// sees it (envelopes, agent requests).
#pragma once

#include <cstddef>
#include <string_view>

namespace tether::net::detail {

// Nesting depth of a JSON text, outside strings, in one pass and with no recursion.
inline bool json_depth_within(std::string_view s, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    switch (ch) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return true;
}

}  // namespace tether::net::detail
