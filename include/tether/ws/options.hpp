// tether/ws/options.hpp: every setting of a ws::client, each with its documented default.
#pragma once

#include <tether/net/backoff_policy.hpp>
#include <tether/net/log.hpp>
#include <tether/net/metrics.hpp>
#include <tether/net/proxy.hpp>
#include <tether/net/tls.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tether::ws {

using header = std::pair<std::string, std::string>;

/// What the application may change before each connection attempt (e.g. a fresh bearer token).
struct handshake_request {
  std::vector<header> headers;  ///< extra handshake headers (start: options::headers)
  std::string token;            ///< query-parameter token (start: options::token)
  std::uint32_t attempt = 0;    ///< 0 for the first connection, then the reconnect attempt
};

/// When and how the client reconnects. See ws::client for the rules.
struct reconnect_policy {
  /// Reconnect at all. When false, the first disconnection or failed connect ends `run`.
  bool enabled = true;
  /// Delays: exponential with full jitter (default: ceiling 500 ms doubling to 30 s, 50 ms floor,
  /// unlimited attempts and time).
  net::backoff_policy backoff{};
  /// The backoff starts over only after a connection stayed open this long, so a server that
  /// accepts and at once drops the connection is not hammered.
  std::chrono::milliseconds stable_after{5000};
  /// Reconnect when the server closes normally (1000). Default true: the client's purpose is
  /// to stay connected; call close() to stop.
  bool on_normal_close = true;
  /// Also retry failures a retry cannot fix (TLS verification, a pin mismatch, 401/403/404 and
  /// other 4xx at the handshake, close 1008, subprotocol or extension mismatch, a proxy that
  /// refuses the credentials or the tunnel). Default false.
  bool retry_fatal = false;
  /// Upper bound on how long a server's Retry-After (429/503 at the handshake) may delay us.
  std::chrono::seconds max_retry_after{300};
  /// Seed of the jitter's random generator (0: seeded from std::random_device).
  std::uint64_t seed = 0;
};

/// Settings of a ws::client. Zero durations turn the feature off where noted.
struct options {
  /// ws:// or wss:// URL (IPv6 literals in brackets).
  std::string url;
  /// Extra handshake headers, e.g. {"Authorization", "Bearer ..."}. Never logged.
  std::vector<header> headers;
  /// A token sent as the query parameter `token_parameter` (default "access_token"); empty: none.
  /// Never logged.
  std::string token;
  std::string token_parameter = "access_token";
  /// Subprotocols to offer, in order of preference. A server choice outside this list fails
  /// the connection with error::subprotocol_mismatch.
  std::vector<std::string> subprotocols;
  /// TLS for wss:// (verified against the system store by default).
  net::tls_options tls;
  /// The proxy (default: from the environment, as curl; see net::proxy_options).
  net::proxy_options proxy;

  std::chrono::milliseconds connect_timeout{10'000};    ///< DNS + TCP connect (and the proxy's tunnel, TLS to an https:// proxy)
  std::chrono::milliseconds handshake_timeout{10'000};  ///< TLS + WebSocket handshake
  std::chrono::milliseconds close_timeout{5'000};       ///< our close until the peer's answer

  /// Keepalive (on by default): a ping every `ping_interval` (0: no pings); when neither a pong
  /// nor any other byte arrives within `pong_timeout` after a ping, the peer is dead and the
  /// connection fails with error::pong_timeout. While the application is not pulling events
  /// (so the client is not reading), the deadline is suspended.
  std::chrono::milliseconds ping_interval{20'000};
  std::chrono::milliseconds pong_timeout{10'000};

  /// Largest incoming message; a larger one closes the connection with 1009.
  std::size_t max_message_size = 16u << 20;
  /// Offer permessage-deflate (RFC 7692).
  bool permessage_deflate = false;

  reconnect_policy reconnect{};
  /// Called before every connection attempt; may change headers and token.
  std::function<void(handshake_request&)> before_connect;

  /// Outbox bounds: messages queued but not yet written (while connected too).
  std::size_t outbox_max_messages = 1024;
  std::size_t outbox_max_bytes = 16u << 20;

  /// Events queued for the application; when full of messages, the client stops reading the
  /// socket (TCP backpressure). Status events (connected, disconnected, reconnecting, pong)
  /// never wait: they may exceed the limit by 32, past which the oldest status event is
  /// discarded (state() always tells the current state). Messages are never discarded.
  std::size_t event_queue_limit = 256;
  /// Deliver a `pong` event for every pong received (else only last_rtt() is updated).
  bool pong_events = false;

  /// Socket reads are done in chunks of this size; queued messages of up to
  /// `write_coalesce_bytes` are framed together into writes of up to that size. A larger
  /// message is framed and masked in one pass, a piece of `write_coalesce_bytes` at a time,
  /// with at most about two pieces waiting in memory ahead of the socket.
  std::size_t read_buffer_size = 64u << 10;
  std::size_t write_coalesce_bytes = 64u << 10;

  /// Linux: watch the routing tables (netlink) and cut a pending backoff wait short when a
  /// link, address or route appears, so the client reconnects at once when the network comes
  /// back. Off by default; elsewhere it has no effect.
  bool watch_network = false;

  net::logger log{};
  /// Counters and timings (net::metric::ws_*): connections, reconnects by cause, messages and
  /// bytes in and out, outbox depth, ping round trips. Default: none.
  std::shared_ptr<net::metrics_sink> metrics;
};

}  // namespace tether::ws
