// tether/net/log.hpp: the logging hook (a user-supplied sink; nothing is logged by default)
// and the redaction of secrets that every log line and error message goes through.
#pragma once

#include <tether/config.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace tether::net {

enum class log_level { trace, debug, info, warn, error };

/// Receives one formatted line. Called from the library's threads; it must be thread-safe
/// and should not block. An empty sink (the default) means nothing is logged.
using log_sink = std::function<void(log_level, std::string_view)>;

/// A sink plus a minimum level. Copyable; cheap when empty.
struct logger {
  log_sink sink;
  log_level min_level = log_level::info;

  bool enabled(log_level l) const noexcept { return sink && l >= min_level; }
  void operator()(log_level l, std::string_view line) const {
    if (enabled(l)) sink(l, line);
  }
};

/// True for header names whose values are secrets (Authorization, Proxy-Authorization,
/// Cookie, Set-Cookie, and any name containing "token", "secret", "password" or "api-key").
TETHER_DECL bool is_secret_header(std::string_view name) noexcept;

/// True for query parameter names that look like credentials (token, access_token, auth,
/// key, api_key, password, secret, signature, sig, and names containing "token").
TETHER_DECL bool is_secret_parameter(std::string_view name) noexcept;

/// `name: value`, with the value replaced by "REDACTED" for secret headers.
TETHER_DECL std::string redact_header(std::string_view name, std::string_view value);

/// A request target (path and query) with secret query parameter values replaced.
TETHER_DECL std::string redact_target(std::string_view target);

/// Any text: every occurrence of `secret` (if not empty) replaced by "REDACTED".
TETHER_DECL std::string redact(std::string text, std::string_view secret);

}  // namespace tether::net
