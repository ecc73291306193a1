// tether/ws/detail/session_rules.hpp: the decisions of one connection's life, without I/O:
// whether the server's answer to the upgrade opens a connection (RFC 6455 §4.1), how an open
// connection ended (its close code and error), and when a silent peer counts as dead. The
// client (ws/impl/client_connect.ipp, client_session.ipp) gathers the facts and acts on the
// verdicts; tests/unit/ws/session_rules.cpp holds the tables.
#pragma once

#include <tether/net/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tether::ws::detail {

// ---- the upgrade ------------------------------------------------------------------------

/// What the server's answer to the upgrade request said, as far as it was read.
struct handshake_answer {
  error_code failed;        ///< why the handshake failed, if it did (not for `declined`)
  bool declined = false;    ///< a whole response that is no upgrade was read
  unsigned status = 0;      ///< its status, or what was seen of a response not read whole (0: none)
  std::string retry_after;  ///< its Retry-After, if any
  std::vector<std::string> protocols;   ///< Sec-WebSocket-Protocol values
  std::vector<std::string> extensions;  ///< Sec-WebSocket-Extensions values
};

/// What the client offered.
struct handshake_offer {
  const std::vector<std::string>* subprotocols = nullptr;
  bool permessage_deflate = false;
};

struct handshake_verdict {
  error_code ec;            ///< empty: the connection is open
  unsigned status = 0;      ///< a refusal's HTTP status
  std::optional<std::chrono::seconds> retry_after;
  bool deflate = false;     ///< permessage-deflate was accepted
  bool close_socket = false;  ///< an upgrade was made but must not be used: close it
};

/// A refusal keeps its status (and Retry-After when the response was read whole), including a
/// web page Beast could not read whole; an answer that picks a subprotocol or an extension that
/// was not offered fails the connection (RFC 6455 §4.1); permessage-deflate is the only
/// extension tether offers, once.
TETHER_DECL handshake_verdict judge_handshake(const handshake_answer& a, const handshake_offer& o,
                                              std::chrono::system_clock::time_point now);

// ---- the end of an open connection ------------------------------------------------------

struct session_facts {
  bool peer_closed = false;         ///< the read ended with the closing handshake
  std::uint16_t peer_code = 0;      ///< the code in the peer's Close (1005: it gave none)
  error_code read_error;            ///< otherwise, why reading failed
  std::uint16_t failure_code = 1006;  ///< the code sent for that failure (close_code_for)
  error_code fail_reason;           ///< set when the client failed the connection itself (pong timeout...)
  bool close_requested = false;     ///< the application asked to close
  std::uint16_t our_code = 1000;    ///< the code it asked to close with
};

struct session_end {
  error_code error;            ///< empty for a clean close
  std::uint16_t close_code = 0;
};

/// A peer's Close without a code is a normal close (1000); a close the application asked for
/// and the peer answered is clean, with the peer's code when it gave one, else ours; a failure
/// the client caused itself is reported as that cause, not as the socket error it led to.
TETHER_DECL session_end judge_session_end(const session_facts& f) noexcept;

// ---- keepalive --------------------------------------------------------------------------

/// The pinger's rules: ping every `interval` (none when ≤ 0); after a ping, wait
/// `pong_timeout` (no check when ≤ 0) and then fail the connection if the peer stayed silent.
struct keepalive {
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds pong_timeout{0};

  bool pings() const noexcept { return interval.count() > 0; }
  bool checks_pong() const noexcept { return pong_timeout.count() > 0; }
  /// Silence since the ping means a dead peer, unless the client stopped reading itself (the
  /// application is not taking events) or bytes wait unread: then the peer may well be there.
  static bool peer_dead(std::chrono::steady_clock::time_point last_rx, std::chrono::steady_clock::time_point ping_sent,
                        bool reader_paused, std::size_t buffered) noexcept {
    return last_rx < ping_sent && !reader_paused && buffered == 0;
  }
};

}  // namespace tether::ws::detail
