// tether/ws/events.hpp: messages and the events a ws::client delivers.
#pragma once

#include <tether/net/error.hpp>
#include <tether/ws/options.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tether::ws {

enum class message_kind : std::uint8_t { text, binary };

/// One whole WebSocket message (fragments already reassembled).
struct message {
  message_kind kind = message_kind::text;
  std::string data;

  static message text(std::string s) { return {message_kind::text, std::move(s)}; }
  static message binary(std::string s) { return {message_kind::binary, std::move(s)}; }
  bool is_text() const noexcept { return kind == message_kind::text; }
  friend bool operator==(const message&, const message&) = default;
};

/// The handshake succeeded.
struct connected {
  std::string subprotocol;                ///< the server's choice ("" if none)
  std::vector<header> response_headers;   ///< the 101 response's headers
};

/// A pong arrived (only with options::pong_events).
struct pong {
  std::string payload;
  std::chrono::microseconds rtt{0};  ///< since the latest ping we sent
};

/// The client will try again after `delay`; `cause` says why the last attempt ended.
struct reconnecting {
  std::uint32_t attempt = 0;
  std::chrono::milliseconds delay{0};
  error_code cause;          ///< error::closed_by_server when the server closed it normally
  unsigned http_status = 0;  ///< the handshake's status when it was refused
  std::uint16_t close_code = 0;  ///< the server's close code, if it sent one
};

/// A connection ended (or a connect attempt that will not be retried failed).
struct disconnected {
  std::uint16_t code = 1006;  ///< the close code of the closing handshake; 1006 if there was none
  std::string reason;         ///< the close frame's reason
  error_code error;           ///< what went wrong; empty for a clean close
  unsigned http_status = 0;   ///< the handshake's status when it was refused
};

using event = std::variant<connected, message, pong, reconnecting, disconnected>;

/// The connection's state, as seen by `client::state()`.
enum class connection_state : std::uint8_t { idle, connecting, open, reconnecting, closing, closed };

TETHER_DECL const char* to_string(connection_state s) noexcept;

/// A close code and reason for client::close.
struct close_reason {
  std::uint16_t code = 1000;
  std::string reason;
};

}  // namespace tether::ws
