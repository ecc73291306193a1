// tether/transfer/types.hpp: what a transfer is asked to do, what it reports, and the
// manager's options (every limit with its default).
#pragma once

#include <tether/net/backoff_policy.hpp>
#include <tether/net/error.hpp>
#include <tether/net/log.hpp>
#include <tether/net/retry.hpp>
#include <tether/net/metrics.hpp>
#include <tether/net/proxy.hpp>
#include <tether/net/tls.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::transfer {

using net::outcome;

enum class kind { download, upload };
/// Upload protocols: tus 1.0 (resumable) or one plain request of the whole file.
enum class upload_protocol { tus, put, post };

/// One transfer. For a download, `file` is the destination; for an upload, the source.
struct request {
  std::string url;
  std::filesystem::path file;
  /// Extra request headers (e.g. Authorization). They are stored in the state record (which is
  /// readable by its owner only) so that a restarted process can resume, never logged or listed.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Expected SHA-256 of the content (64 hex digits). A download is verified before its
  /// destination appears; with it, a download whose server offers no validator can still resume.
  /// An upload's source is checked against it before any byte is sent.
  std::string sha256;
  /// Uploads: the protocol and, for tus, the PATCH size (0: options::upload_chunk_size).
  upload_protocol protocol = upload_protocol::tus;
  std::uint64_t chunk_size = 0;
  /// Do not start before this moment (also kept across restarts).
  std::chrono::system_clock::time_point earliest_start{};
  /// Per-transfer bandwidth limit in bytes/s (0: none).
  std::uint64_t bandwidth_limit = 0;
};

/// The state of a transfer as kept in its record.
enum class status { queued, running, waiting, paused, succeeded, failed, cancelled };
TETHER_DECL const char* to_string(status s) noexcept;
TETHER_DECL const char* to_string(kind k) noexcept;
TETHER_DECL const char* to_string(upload_protocol p) noexcept;

/// The end of a transfer (or of this attempt at it, for retry_later and paused).
struct result {
  std::string id;
  transfer::kind kind = kind::download;
  /// success, rejected (the server refused), retry_later (come back after `retry_after`;
  /// the transfer stays resumable) or failed.
  net::outcome outcome = net::outcome::failed;
  error_code error;            ///< empty on success
  std::string message;         ///< what went wrong, for people (secrets redacted)
  unsigned http_status = 0;    ///< the last status the server answered, if any
  std::optional<std::chrono::seconds> retry_after;
  std::filesystem::path file;  ///< destination or source
  std::string final_url;       ///< after redirects (redacted)
  std::string sha256;          ///< of the content: when the request gave one (verified) or with report_sha256
  std::uint64_t bytes_on_disk = 0;   ///< durable bytes (downloads) or acknowledged (uploads)
  std::uint64_t bytes_received = 0;  ///< body bytes moved over the network, all attempts
  std::optional<std::uint64_t> bytes_expected;
  std::uint32_t attempts = 0;
  std::uint32_t restarts = 0;  ///< times the transfer had to start over from zero
  /// Connections opened for it, requests sent on a kept-alive one instead, and TLS handshakes
  /// that resumed an earlier session (all its runs).
  std::uint32_t connections_opened = 0, connections_reused = 0, tls_resumed = 0;
  std::string location;        ///< uploads: the tus upload URL (redacted)
};

/// A progress report, at most every `options::progress_interval` per transfer.
struct progress {
  std::string id;
  transfer::kind kind = kind::download;
  std::uint64_t bytes_done = 0;     ///< received so far in the current file
  std::uint64_t bytes_durable = 0;  ///< of which checkpointed
  std::optional<std::uint64_t> bytes_total;
  double bytes_per_second = 0;
  std::optional<std::chrono::seconds> eta;
};

/// An attempt failed and another follows after `delay` (see options::on_retry).
struct retry_notice {
  std::string id;
  transfer::kind kind = kind::download;
  std::uint32_t attempt = 0;  ///< the attempt that failed, counted over the call (1: the first)
  std::chrono::milliseconds delay{0};  ///< before the next attempt
  error_code error;                    ///< why it failed
  std::string message;                 ///< the same for people (secrets redacted)
  unsigned http_status = 0;            ///< the server's status, if it answered
};

/// One line of `manager::list()`.
struct info {
  std::string id;
  transfer::kind kind = kind::download;
  transfer::status status = status::queued;
  std::string url;  ///< redacted
  std::filesystem::path file;
  std::uint64_t bytes_durable = 0;
  std::optional<std::uint64_t> bytes_total;
  std::optional<transfer::result> result;  ///< for finished transfers
  bool result_delivered = false;
  std::chrono::system_clock::time_point created{}, updated{};
  /// A damaged record: what was wrong with it, and where it was set aside.
  std::string problem;
};

struct options {
  /// Where records and partial data live (created if missing). Required.
  std::filesystem::path state_dir;
  /// Transfers running at once; more wait their turn.
  std::size_t max_concurrent = 4;
  /// Retries within one call: at most `retry.max_attempts` attempts in a row that bring no
  /// new bytes, the first included (progress starts the count over; 1: no retry, 0: no
  /// limit but the deadline), spaced by the backoff. Default: ceiling 500 ms doubling to
  /// 30 s, 50 ms floor, 9 attempts without progress.
  net::backoff_policy retry{.initial = std::chrono::milliseconds{500},
                            .max = std::chrono::milliseconds{30'000},
                            .multiplier = 2.0,
                            .min = std::chrono::milliseconds{50},
                            .max_attempts = 9,
                            .max_elapsed = std::chrono::milliseconds{0}};
  /// A server's Retry-After longer than this ends the call as retry_later (resumable later).
  std::chrono::seconds max_retry_after{300};
  /// Whole-transfer deadline counted from the transfer's creation (0: none).
  std::chrono::seconds resource_deadline{std::chrono::hours{24 * 7}};
  /// Abandon a connection that delivers no bytes for this long (and resume).
  std::chrono::milliseconds read_inactivity_timeout{30'000};
  /// DNS + TCP connect (and the proxy's tunnel, TLS to an https:// proxy); the TLS handshake
  /// with the server has its own bound of the same length.
  std::chrono::milliseconds connect_timeout{15'000};
  /// The socket receive buffer (SO_RCVBUF) in bytes; 0 leaves the kernel's autotuning. Bytes in
  /// kernel buffers when a process dies are fetched again, so a cap bounds that loss, at the
  /// price of throughput on links whose bandwidth x delay exceeds it. At most 1 GiB.
  std::uint64_t receive_buffer_bytes = 0;
  /// Checkpoint granularity: data is synced (on a thread of its own, off the network path)
  /// and a SHA-256 digest recorded for every chunk of this size. Raised for huge files to keep
  /// ~1024 digests per record. A multiple of 64 KiB, at least 64 KiB.
  std::uint64_t checkpoint_bytes = 4u << 20;
  /// How far a download may run ahead of what is durable (at least two checkpoint chunks): a
  /// crash loses at most this much plus one read (and what the socket buffers held). It only
  /// binds when the network outruns the disk's syncs: then a larger window keeps the download
  /// at network speed, a smaller one bounds the loss. At 8 MiB a SIGKILL re-fetched ~12 MiB on
  /// loopback (nginx's send buffer included), against ~30 MiB at 32 MiB, which ran ~20% faster
  /// on a 1 GB/s loopback link (docs/reliability.md, tests/bench/reliability.py).
  std::uint64_t max_unsynced_bytes = 8u << 20;
  /// Segmented downloads: a download of a known length fetched over up to this many
  /// connections at once, each asking for its own `Range` (1: one connection; at most 16). Only
  /// when the bytes are provable (a strong ETag, a Last-Modified older than 60 s by the server's
  /// Date, or the request's SHA-256) and the server has answered a Range request with a 206;
  /// every segment request carries `If-Range`, and any answer that shows another version starts
  /// the whole file over. Helps where one connection is capped (CDNs, object stores, long fat
  /// links); each connection counts against `max_connections_per_host`.
  std::uint32_t connections_per_download = 4;
  /// Segmented downloads start on one connection and open the others once its reads show that
  /// the network is the limit: it spent at least 80% of a window (50 ms or 32 MiB) waiting
  /// for data (segment_plan.hpp's judge_ramp, judged again every window). Where one connection
  /// already outruns this machine (loopback, a fast LAN) more would only add work. False: all
  /// at once, as aria2 does.
  bool ramp_connections = true;
  /// No segment is smaller than this (and no file smaller than twice this is split).
  std::uint64_t min_segment_bytes = 4u << 20;
  /// Connections the manager keeps open to one host:port at once across its segmented
  /// downloads (each download still gets its first connection). At least 1.
  std::uint32_t max_connections_per_host = 16;
  /// Idle HTTP/1.1 connections kept for the next request to the same origin (tus's HEAD and
  /// PATCHes, a download's segments, the next transfer to that host), in all (0: none kept) and
  /// per origin, each used again only within `idle_connection_timeout` of its last response
  /// (older ones are closed whenever the pool is next used, and all at shutdown). A kept
  /// connection the server has closed meanwhile is noticed before use. TLS sessions are resumed
  /// per origin (not with pins).
  std::uint32_t max_idle_connections = 8;
  std::uint32_t max_idle_per_origin = 4;
  std::chrono::milliseconds idle_connection_timeout{15'000};
  /// Global bandwidth limit across transfers in bytes/s (0: none).
  std::uint64_t bandwidth_limit = 0;
  std::uint32_t max_redirects = 10;
  /// The largest download accepted, announced or not (0: no limit but the disk). A bigger
  /// Content-Length fails at once, an endless body when it passes the limit: `too_large`.
  std::uint64_t max_download_bytes = 0;
  /// A body of unannounced length stops (`insufficient_space`) when less than this is free.
  std::uint64_t min_free_space = 64u << 20;
  /// Response header section limit (bytes).
  std::uint32_t max_header_bytes = 64u << 10;
  /// tus PATCH size by default.
  std::uint64_t upload_chunk_size = 8u << 20;
  std::chrono::milliseconds progress_interval{250};
  /// Compute the whole content's SHA-256 for `result::sha256` even when the request gives no
  /// expected digest (one more hash pass over the data; per-chunk digests are always kept).
  bool report_sha256 = false;
  /// Reserve disk blocks for the expected size up front where the filesystem allows.
  bool preallocate = true;
  net::tls_options tls;
  /// The proxy (default: from the environment, as curl; see net::proxy_options).
  net::proxy_options proxy;
  net::logger log;
  /// Counters and timings (net::metric::transfer*): runs started and finished, bytes, retries,
  /// fsync latency. Default: none.
  std::shared_ptr<net::metrics_sink> metrics;
  /// Called on the manager's thread; must not block. A finished transfer reports its last
  /// progress (all bytes) before its completion.
  std::function<void(const progress&)> on_progress;
  /// Called on the manager's thread before each wait between attempts; must not block.
  std::function<void(const retry_notice&)> on_retry;
};

}  // namespace tether::transfer
