#pragma once

#include <tether/net/retry.hpp>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>

namespace tether::net {

const char* to_string(outcome o) noexcept {
  switch (o) {
    case outcome::success: return "success";
    case outcome::rejected: return "rejected";
    case outcome::retry_later: return "retry_later";
    case outcome::failed: return "failed";
  }
  return "unknown";
}

outcome classify_status(unsigned status) noexcept {
  if (status >= 200 && status < 400) return outcome::success;
  if (status == 408 || status == 425 || status == 429) return outcome::retry_later;
  if (status >= 400 && status < 500) return outcome::rejected;
  if (status >= 500 && status < 600) return outcome::retry_later;
  return outcome::failed;  // 1xx as a final answer, or not a status at all
}

error_code status_error(unsigned status) noexcept {
  switch (classify_status(status)) {
    case outcome::rejected: return make_error_code(error::rejected);
    case outcome::retry_later:
      return make_error_code(status >= 500 && status != 503 ? error::server_error : error::retry_later);
    default: return make_error_code(error::protocol_error);
  }
}

outcome classify_error(const error_code& ec) noexcept {
  if (!ec) return outcome::success;
  if (is_tls_verification_failure(ec)) return outcome::failed;
  if (ec.category() == socks_category()) return ec == condition::fatal ? outcome::failed : outcome::retry_later;
  if (ec.category() == error_category()) {
    switch (static_cast<error>(ec.value())) {
      case error::rejected:
      case error::handshake_rejected: return outcome::rejected;
      default: break;
    }
    return ec == condition::transient ? outcome::retry_later : outcome::failed;
  }
  // Everything from the network (resets, refusals, EOF, resolver failures, timeouts, TLS
  // stream truncation) is worth another try.
  return outcome::retry_later;
}

namespace detail {

inline int month_index(std::string_view m) noexcept {
  static constexpr std::array<std::string_view, 12> names = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == m) return static_cast<int>(i);
  return -1;
}

inline bool parse_int(std::string_view s, int& out) noexcept {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

inline bool parse_clock(std::string_view s, std::tm& tm) noexcept {
  // HH:MM:SS
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  return parse_int(s.substr(0, 2), tm.tm_hour) && parse_int(s.substr(3, 2), tm.tm_min) &&
         parse_int(s.substr(6, 2), tm.tm_sec) && tm.tm_hour < 24 && tm.tm_min < 60 &&
         tm.tm_sec <= 60;
}

}  // namespace detail

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
  std::tm tm{};
  int day = 0, year = 0;
  const auto comma = v.find(',');
  if (comma != std::string_view::npos) {
    auto rest = v.substr(comma + 1);
    if (rest.size() == 25 && rest.substr(22) == "GMT") {
      // IMF-fixdate: " 06 Nov 1994 08:49:37 GMT"
      if (rest[0] != ' ' || rest[3] != ' ' || rest[7] != ' ' || rest[12] != ' ' || rest[21] != ' ')
        return std::nullopt;
      if (!detail::parse_int(rest.substr(1, 2), day)) return std::nullopt;
      tm.tm_mon = detail::month_index(rest.substr(4, 3));
      if (!detail::parse_int(rest.substr(8, 4), year)) return std::nullopt;
      if (!detail::parse_clock(rest.substr(13, 8), tm)) return std::nullopt;
    } else if (rest.size() == 23 && rest.substr(20) == "GMT") {
      // RFC 850: " 06-Nov-94 08:49:37 GMT"
      if (rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' || rest[19] != ' ')
        return std::nullopt;
      if (!detail::parse_int(rest.substr(1, 2), day)) return std::nullopt;
      tm.tm_mon = detail::month_index(rest.substr(4, 3));
      if (!detail::parse_int(rest.substr(8, 2), year)) return std::nullopt;
      year += year < 70 ? 2000 : 1900;
      if (!detail::parse_clock(rest.substr(11, 8), tm)) return std::nullopt;
    } else {
      return std::nullopt;
    }
  } else if (v.size() == 24) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (v[3] != ' ' || v[7] != ' ' || v[10] != ' ' || v[19] != ' ') return std::nullopt;
    tm.tm_mon = detail::month_index(v.substr(4, 3));
    auto d = v.substr(8, 2);
    if (d[0] == ' ') d.remove_prefix(1);
    if (!detail::parse_int(d, day)) return std::nullopt;
    if (!detail::parse_clock(v.substr(11, 8), tm)) return std::nullopt;
    if (!detail::parse_int(v.substr(20, 4), year)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  // Years past 2200 would overflow a nanosecond time_point (and mean nothing for Retry-After).
  if (tm.tm_mon < 0 || day < 1 || day > 31 || year < 1970 || year > 2200) return std::nullopt;
  tm.tm_mday = day;
  tm.tm_year = year - 1900;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now,
                                                      std::chrono::seconds cap) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    // delta-seconds; a value too large for 64 bits is simply "very long": the cap.
    std::uint64_t secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return cap;
    if (ec != std::errc{} || p != value.data() + value.size()) return std::nullopt;
    if (secs > static_cast<std::uint64_t>(cap.count())) return cap;
    return std::chrono::seconds{static_cast<std::int64_t>(secs)};
  }
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  if (*when <= now) return std::chrono::seconds{0};
  auto d = std::chrono::ceil<std::chrono::seconds>(*when - now);
  return d > cap ? cap : d;
}

}  // namespace tether::net
