// tether/transfer/detail/record.hpp: the on-disk record of one transfer (schema-versioned
// JSON), its strict decoder, and the mapping from ids to file names.
#pragma once

#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/types.hpp>

#include <boost/system/result.hpp>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::transfer::detail {

/// 2: records name their chunk digest (`chunk_digest`); a schema-1 record's chunks are SHA-256.
inline constexpr int record_schema = 2;


/// Everything a restarted process needs to continue a transfer, or to report its end.
struct record {
  std::string id;
  transfer::kind kind = kind::download;
  transfer::status status = status::queued;
  std::string url;        ///< as requested
  std::string final_url;  ///< after redirects
  std::string file;       ///< destination or source (absolute)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string sha256_expected;
  upload_protocol protocol = upload_protocol::tus;
  std::uint64_t chunk_size = 0;  ///< tus PATCH size
  std::int64_t earliest_start_ms = 0;
  std::uint64_t bandwidth_limit = 0;

  // What the server said the content is (downloads: validators for If-Range).
  std::string etag;  ///< strong ETag, else empty
  std::string last_modified;
  std::string content_encoding;
  std::optional<std::uint64_t> length;

  // Checkpoint: bytes [0, offset) are durable (downloads: synced in the partial file; uploads:
  // acknowledged by the server), with one digest per `checkpoint_bytes` chunk (and one for a
  // final shorter chunk once complete).
  std::uint64_t offset = 0;
  std::uint64_t checkpoint_bytes = 0;
  /// What `digests` and `chunks` hold: XXH3-128 for records made now, SHA-256 for records an
  /// earlier version made (they keep it until the transfer ends).
  hash_algorithm chunk_digest = hash_algorithm::xxh3_128;
  std::vector<std::string> digests;
  /// A segmented download (several connections at once): one entry per `checkpoint_bytes`
  /// chunk of `length`, the chunk's digest once it is durable, else empty. Then `offset` is the
  /// number of durable bytes (not a prefix) and `digests` is empty. Empty for everything else.
  std::vector<std::string> chunks;
  /// The server answered a Range request of a segmented download with the whole content (or a
  /// redirect): this content is fetched over one connection from now on.
  bool ranges_refused = false;

  // Uploads: the source's identity, and the tus upload URL once created.
  std::uint64_t source_size = 0;
  std::int64_t source_mtime_ns = 0;
  std::string upload_url;
  std::int64_t upload_expires_ms = 0;  ///< the server's Upload-Expires (Unix ms), 0 = none given

  std::uint64_t bytes_received = 0;
  std::uint32_t attempts = 0;
  std::uint32_t restarts = 0;
  std::uint32_t connections_opened = 0, connections_reused = 0, tls_resumed = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::optional<transfer::result> result;
  bool result_delivered = false;
  /// A succeeded download: its destination as the transfer left it.
  std::optional<file_identity> produced;
};

/// The bytes a segmented download's chunks with a digest cover (record::chunks).
TETHER_DECL std::uint64_t held_bytes(const std::vector<std::string>& chunks, std::uint64_t chunk,
                                     std::uint64_t length) noexcept;

/// The record as JSON text.
TETHER_DECL std::string encode_record(const record& r);

/// Parses and validates a record. Errors: `state_version` (a newer schema), `state_corrupt`
/// with `why` naming the first problem (bad JSON, a missing or mistyped field, offsets or
/// digests that do not add up).
TETHER_DECL boost::system::result<record> decode_record(std::string_view text, std::string& why);

/// A result as JSON without its id, kind and file (the record holds those), and back, strictly:
/// nothing on `why`'s first problem. The error survives for the categories a transfer produces.
TETHER_DECL nlohmann::json encode_result(const result& r);
TETHER_DECL std::optional<result> decode_result(const nlohmann::json& j, const record& r, std::string& why);

/// The file name stem for an id: letters, digits, '.', '_' and '-' kept, other bytes as
/// %XX; long ids shortened with a digest so names stay under 200 bytes. Never "." or "..".
TETHER_DECL std::string file_stem(std::string_view id);

}  // namespace tether::transfer::detail
