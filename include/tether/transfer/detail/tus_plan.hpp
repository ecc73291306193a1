// tether/transfer/detail/tus_plan.hpp: the tus 1.0 client's decisions without I/O: what the
// server offers (OPTIONS), what its creation, HEAD and PATCH answers mean, and when a recorded
// upload has expired. Tested by tables in tests/unit/transfer/decide.cpp.
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/url.hpp>
#include <tether/transfer/detail/file.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace tether::transfer::detail {

/// The comma-separated tokens of a header value, trimmed and lower-cased.
TETHER_DECL std::set<std::string> header_tokens(std::string_view v);

/// What a tus server offers, from its answer to OPTIONS.
struct tus_capabilities {
  bool termination = false;
  std::optional<hash_algorithm> checksum;  ///< for Upload-Checksum: sha256, else sha1, else none
};
TETHER_DECL tus_capabilities judge_options(unsigned status, std::string_view extensions, std::string_view algorithms);

/// What a tus answer means.
struct tus_verdict {
  enum kind_t {
    proceed,  ///< go on: `offset` is the server's (HEAD, PATCH) or `location` the new upload (POST)
    forget,   ///< the server no longer has the upload: create a new one (reported as `why`)
    retry,    ///< ask the server's offset again on the next attempt (`ec` retry_later)
    fail,     ///< `ec`, from the status or a broken answer
  } kind = fail;
  error_code ec;
  std::string why;  ///< empty where the status line says it all
  std::uint64_t offset = 0;
  std::optional<net::endpoint_url> location;
};

/// POST (creation): 201 with a Location that resolves against the creation URL.
TETHER_DECL tus_verdict judge_creation(unsigned status, std::string_view location, const net::endpoint_url& create);
/// HEAD: the server's Upload-Offset, consistent with the source's size.
TETHER_DECL tus_verdict judge_head(unsigned status, std::optional<std::string_view> upload_offset,
                                   std::optional<std::string_view> upload_length, std::uint64_t source_size);
/// PATCH of [begin, end): the new offset must move forward and stay within what was sent.
TETHER_DECL tus_verdict judge_patch(unsigned status, std::optional<std::string_view> upload_offset,
                                    std::uint64_t begin, std::uint64_t end);

/// True when the server's Upload-Expires (Unix ms, 0 = none) has passed at `now_ms`.
constexpr bool upload_expired(std::int64_t expires_ms, std::int64_t now_ms) noexcept {
  return expires_ms != 0 && now_ms >= expires_ms;
}

}  // namespace tether::transfer::detail
