// tether/ws/impl/session_rules.ipp: the upgrade's verdict and how an open connection ended.
#pragma once

#include <tether/net/retry.hpp>
#include <tether/ws/detail/session_rules.hpp>

#include <algorithm>
#include <string_view>

namespace tether::ws::detail {

handshake_verdict judge_handshake(const handshake_answer& a, const handshake_offer& o,
                                  std::chrono::system_clock::time_point now) {
  handshake_verdict v;
  if (a.declined) {
    v.ec = make_error_code(error::handshake_rejected);
    v.status = a.status;
    if (!a.retry_after.empty()) v.retry_after = net::parse_retry_after(a.retry_after, now);
    return v;
  }
  if (a.failed) {
    // A response that is no upgrade but that could not be read whole (a web page larger than
    // the limit, a connection closed after the header) is still a refusal with a status.
    if (a.status != 0 && a.status != 101) {
      v.ec = make_error_code(error::handshake_rejected);
      v.status = a.status;
    } else {
      v.ec = a.failed;
    }
    return v;
  }
  static const std::vector<std::string> none;
  const auto& offered = o.subprotocols ? *o.subprotocols : none;
  for (const auto& p : a.protocols) {
    if (a.protocols.size() > 1 || std::find(offered.begin(), offered.end(), p) == offered.end()) {
      v.ec = make_error_code(error::subprotocol_mismatch);
      v.close_socket = true;
      return v;
    }
  }
  for (const auto& value : a.extensions) {
    const std::string_view ext(value);
    constexpr std::string_view name = "permessage-deflate";
    const bool deflate = ext.substr(0, name.size()) == name &&
                         (ext.size() == name.size() || ext[name.size()] == ';' || ext[name.size()] == ' ');
    if (!o.permessage_deflate || !deflate || v.deflate || ext.find(',') != std::string_view::npos) {
      v.ec = make_error_code(error::extension_mismatch);
      v.close_socket = true;
      v.deflate = false;
      return v;
    }
    v.deflate = true;
  }
  return v;
}

session_end judge_session_end(const session_facts& f) noexcept {
  session_end e;
  if (f.peer_closed) {
    e.close_code = f.peer_code == 1005 ? std::uint16_t{1000} : f.peer_code;  // no status code given
  } else {
    e.error = f.fail_reason ? f.fail_reason : f.read_error;
    e.close_code = f.failure_code;
  }
  if (f.close_requested && !f.fail_reason && f.peer_closed) {
    e.error = {};
    e.close_code = f.peer_code != 0 && f.peer_code != 1005 ? f.peer_code : f.our_code;
  }
  return e;
}

}  // namespace tether::ws::detail
