// tether/net/metrics.hpp: counters, gauges and timings for an application to export, through a
// small callback interface (no metrics library). Names follow Prometheus conventions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace tether::net {

/// Receives what ws::client and transfer::manager measure. Called from the library's threads
/// (a transfer's fsync timing from its sync thread): implementations must be thread-safe and
/// must not block. `label` is empty or one `key="value"` pair (e.g. `cause="pong_timeout"`)
/// from a small fixed set of values, never a URL or anything secret.
class metrics_sink {
 public:
  virtual ~metrics_sink() = default;
  /// A counter (monotonic) went up by `delta`.
  virtual void count(std::string_view name, std::string_view label, std::uint64_t delta) = 0;
  /// A gauge's current value.
  virtual void gauge(std::string_view name, std::string_view label, double value) = 0;
  /// One observation of a duration (a histogram or summary on the application's side).
  virtual void observe(std::string_view name, std::string_view label, std::chrono::microseconds value) = 0;
};

/// The names tether reports.
namespace metric {
// ws::client
/// Handshakes that completed (each connection and reconnection).
inline constexpr std::string_view ws_connections = "tether_ws_connections_total";
/// Reconnections, by `cause`: closed_by_server, pong_timeout, handshake_rejected, refused,
/// reset, timeout, tls, proxy, network or other.
inline constexpr std::string_view ws_reconnects = "tether_ws_reconnects_total";
/// Whole messages received and delivered to the application, and their payload bytes.
inline constexpr std::string_view ws_messages_in = "tether_ws_messages_received_total";
inline constexpr std::string_view ws_bytes_in = "tether_ws_received_bytes_total";
/// Messages written to the socket, and their payload bytes.
inline constexpr std::string_view ws_messages_out = "tether_ws_messages_sent_total";
inline constexpr std::string_view ws_bytes_out = "tether_ws_sent_bytes_total";
/// Messages queued and not yet written (after each send and each write).
inline constexpr std::string_view ws_outbox_depth = "tether_ws_outbox_messages";
/// The round trip of each keepalive ping.
inline constexpr std::string_view ws_ping_rtt = "tether_ws_ping_rtt";
// transfer::manager
/// Transfer runs that began, by `kind` (download, upload).
inline constexpr std::string_view transfers_started = "tether_transfers_started_total";
/// Transfers that ended (a run, or a cancel while idle), by `outcome` (success, rejected,
/// retry_later, failed; a cancelled or paused one is failed with its error).
inline constexpr std::string_view transfers_finished = "tether_transfers_finished_total";
/// Transfers running now.
inline constexpr std::string_view transfers_active = "tether_transfers_active";
/// Bytes moved over the network, by `kind` (download: received; upload: sent and acknowledged).
inline constexpr std::string_view transfer_bytes = "tether_transfer_bytes_total";
/// Waits between attempts (one per retry).
inline constexpr std::string_view transfer_retries = "tether_transfer_retries_total";
/// How long each checkpoint's fsync of downloaded data took.
inline constexpr std::string_view transfer_fsync = "tether_transfer_fsync";
}  // namespace metric

}  // namespace tether::net
