// tether/transfer/detail/json_reader.hpp: a strict reader of JSON objects for what comes from
// disk or from a peer (records, agent requests): each accessor records the first problem, in
// words that name the field, and yields a default, so a decoder reads straight through and
// checks `why` once.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tether::transfer::detail {

/// The value of `values` whose to_string() is `s`.
template <class Enum, std::size_t N>
std::optional<Enum> enum_from(std::string_view s, const Enum (&values)[N]) {
  for (auto v : values)
    if (s == to_string(v)) return v;
  return std::nullopt;
}

// A strict reader: each accessor records the first problem and yields a default.
struct reader {
  using json = nlohmann::json;

  const json& j;
  std::string& why;
  std::string where;

  bool fail(const std::string& what) {
    if (why.empty()) why = where + what;
    return false;
  }
  const json* field(const char* name, bool required) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) {
      if (required) fail(std::string("missing \"") + name + "\"");
      return nullptr;
    }
    return &*it;
  }
  std::string str(const char* name, bool required = true) {
    auto f = field(name, required);
    if (!f) return {};
    if (!f->is_string()) return fail(std::string("\"") + name + "\" is not a string"), std::string{};
    return f->get<std::string>();
  }
  std::uint64_t u64(const char* name, bool required = true) {
    auto f = field(name, required);
    if (!f) return 0;
    if (!f->is_number_unsigned()) return fail(std::string("\"") + name + "\" is not a non-negative integer"), 0;
    return f->get<std::uint64_t>();
  }
  std::int64_t i64(const char* name, bool required = true) {
    auto f = field(name, required);
    if (!f) return 0;
    if (!f->is_number_integer()) return fail(std::string("\"") + name + "\" is not an integer"), 0;
    if (f->is_number_unsigned() && f->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      return fail(std::string("\"") + name + "\" is out of range"), 0;
    return f->get<std::int64_t>();
  }
  std::uint32_t u32(const char* name) {
    const auto v = u64(name, false);
    if (v > UINT32_MAX) return fail(std::string("\"") + name + "\" is out of range"), 0;
    return static_cast<std::uint32_t>(v);
  }
  bool boolean(const char* name) {
    auto f = field(name, false);
    if (!f) return false;
    if (!f->is_boolean()) return fail(std::string("\"") + name + "\" is not a boolean");
    return f->get<bool>();
  }
  template <class Enum, std::size_t N>
  Enum enumeration(const char* name, const Enum (&values)[N]) {
    const auto s = str(name);
    if (!why.empty()) return values[0];
    auto v = enum_from(s, values);
    if (!v) fail(std::string("\"") + name + "\" has an unknown value");
    return v.value_or(values[0]);
  }
};

}  // namespace tether::transfer::detail
