#pragma once

#include <tether/net/detail/json_depth.hpp>
#include <tether/ws/envelope.hpp>

#include <openssl/rand.h>

#include <cstdio>

namespace tether::ws {

namespace detail {

// A SAX consumer that only tracks nesting and stops past a bound.
struct depth_guard {
  std::size_t max_depth;
  std::size_t depth = 0;
  bool too_deep = false;
  using number_integer_t = nlohmann::json::number_integer_t;
  using number_unsigned_t = nlohmann::json::number_unsigned_t;
  using number_float_t = nlohmann::json::number_float_t;
  using string_t = nlohmann::json::string_t;
  using binary_t = nlohmann::json::binary_t;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(number_integer_t) { return true; }
  bool number_unsigned(number_unsigned_t) { return true; }
  bool number_float(number_float_t, const string_t&) { return true; }
  bool string(string_t&) { return true; }
  bool binary(binary_t&) { return true; }
  bool start_object(std::size_t) { return enter(); }
  bool key(string_t&) { return true; }
  bool end_object() { return leave(); }
  bool start_array(std::size_t) { return enter(); }
  bool end_array() { return leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
  bool enter() {
    if (++depth > max_depth) too_deep = true;
    return !too_deep;
  }
  bool leave() {
    --depth;
    return true;
  }
};

}  // namespace detail

std::string encode_envelope(const envelope& e, wire_format f) {
  if (f == wire_format::cbor_binary) {
    nlohmann::json j = {{"type", e.type}, {"payload", e.payload}};
    if (e.id) j["id"] = *e.id;
    if (e.reply_to) j["reply_to"] = *e.reply_to;
    auto bytes = nlohmann::json::to_cbor(j);
    return std::string(bytes.begin(), bytes.end());
  }
  // Written piecewise: no wrapper object, so the payload is never copied.
  constexpr auto replace = nlohmann::json::error_handler_t::replace;
  auto str = [](const std::string& v) { return nlohmann::json(v).dump(-1, ' ', false, replace); };
  std::string out = "{\"type\":";
  out += str(e.type);
  out += ",\"payload\":";
  out += e.payload.dump(-1, ' ', false, replace);
  if (e.id) out += ",\"id\":" + str(*e.id);
  if (e.reply_to) out += ",\"reply_to\":" + str(*e.reply_to);
  out += '}';
  return out;
}

boost::system::result<envelope> decode_envelope(std::string_view data, wire_format f,
                                                const envelope_limits& limits) {
  if (data.size() > limits.max_bytes) return make_error_code(error::json_too_large);
  nlohmann::json j;
  if (f == wire_format::json_text) {
    if (!net::detail::json_depth_within(data, limits.max_depth)) return make_error_code(error::json_too_deep);
    j = nlohmann::json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  } else {
    // nlohmann's CBOR reader recurses once per nesting level: a SAX pass that gives up past
    // max_depth bounds that recursion before the real decode.
    detail::depth_guard guard{limits.max_depth};
    const bool ok = nlohmann::json::sax_parse(data.begin(), data.end(), &guard,
                                              nlohmann::json::input_format_t::cbor, true);
    if (guard.too_deep) return make_error_code(error::json_too_deep);
    if (!ok) return make_error_code(error::malformed_json);
    j = nlohmann::json::from_cbor(data.begin(), data.end(), true, /*allow_exceptions=*/false);
  }
  if (j.is_discarded()) return make_error_code(error::malformed_json);
  if (!j.is_object()) return make_error_code(error::missing_type);
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) return make_error_code(error::missing_type);
  envelope e;
  e.type = t->get<std::string>();
  if (auto p = j.find("payload"); p != j.end()) e.payload = std::move(*p);
  if (auto i = j.find("id"); i != j.end() && i->is_string()) e.id = i->get<std::string>();
  if (auto r = j.find("reply_to"); r != j.end() && r->is_string()) e.reply_to = r->get<std::string>();
  return e;
}

void envelope_channel::report(const envelope_error& err) {
  if (on_error_) on_error_(err);
}

error_code envelope_channel::dispatch(const message& m) {
  const wire_format f = m.is_text() ? wire_format::json_text : wire_format::cbor_binary;
  auto r = decode_envelope(m.data, f, opts_.limits);
  if (!r) {
    report({r.error(), {}, r.error().message()});
    return r.error();
  }
  const envelope& e = *r;
  if (e.reply_to) {
    if (auto it = pending_.find(*e.reply_to); it != pending_.end()) {
      it->second->outcome = boost::system::result<nlohmann::json>(e.payload);
      it->second->timer.cancel();
      return {};
    }
  }
  if (auto it = handlers_.find(e.type); it != handlers_.end()) {
    it->second(e);
    return {};
  }
  if (unknown_) {
    unknown_(e);
    return {};
  }
  const auto ec = make_error_code(error::unknown_type);
  report({ec, e.type, "no handler for type " + e.type});
  return ec;
}

void envelope_channel::connection_lost() {
  for (auto& [id, p] : pending_) {
    if (!p->outcome) p->outcome = boost::system::result<nlohmann::json>(make_error_code(error::connection_lost));
    p->timer.cancel();
  }
}

std::string envelope_channel::next_id() {
  if (id_prefix_.empty()) {
    unsigned char raw[6] = {};
    RAND_bytes(raw, sizeof raw);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3], raw[4], raw[5]);
    id_prefix_ = buf;
  }
  return id_prefix_ + "-" + std::to_string(++counter_);
}

}  // namespace tether::ws
