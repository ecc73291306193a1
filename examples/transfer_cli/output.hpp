// tether-transfer's output: the JSON lines on stdout, the exit codes, and what goes to stderr
// (progress, retries, problems and hints), shared by its own and its agent mode.
#pragma once

#include <tether/transfer.hpp>

#include "../network_flags.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace transfer_cli {

namespace tt = tether::transfer;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

inline int usage_error(const std::string& why) {
  std::cerr << "tether-transfer: " << why << "\nTry 'tether-transfer --help' for more information.\n";
  return 1;
}

inline json error_json(const tether::error_code& ec) {
  if (!ec) return nullptr;
  return {{"category", ec.category().name()}, {"value", ec.value()}, {"text", ec.message()}};
}

inline json result_json(const tt::result& r) {
  json j = {{"id", r.id},
            {"kind", tt::to_string(r.kind)},
            {"outcome", tether::net::to_string(r.outcome)},
            {"error", error_json(r.error)},
            {"message", r.message},
            {"http_status", r.http_status},
            {"file", r.file.string()},
            {"final_url", r.final_url}};
  if (!r.sha256.empty()) j["sha256"] = r.sha256;
  if (r.kind == tt::kind::download) {
    j["bytes_on_disk"] = r.bytes_on_disk;
    j["bytes_received"] = r.bytes_received;
  } else {
    j["bytes_sent"] = r.bytes_received;         // written to the network, all attempts
    j["bytes_acknowledged"] = r.bytes_on_disk;  // confirmed by the server
  }
  j["bytes_expected"] = r.bytes_expected ? json(*r.bytes_expected) : json(nullptr);
  j["attempts"] = r.attempts;
  j["restarts"] = r.restarts;
  j["connections_opened"] = r.connections_opened;
  j["connections_reused"] = r.connections_reused;
  j["tls_resumed"] = r.tls_resumed;
  if (r.retry_after) j["retry_after_s"] = r.retry_after->count();
  if (!r.location.empty()) j["location"] = r.location;
  return j;
}

inline std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline json info_json(const tt::info& i) {
  json j = {{"id", i.id},
            {"kind", tt::to_string(i.kind)},
            {"status", i.problem.empty() ? tt::to_string(i.status) : "damaged"},
            {"url", i.url},
            {"file", i.file.string()},
            {"bytes_durable", i.bytes_durable},
            {"bytes_total", i.bytes_total ? json(*i.bytes_total) : json(nullptr)},
            {"created", unix_seconds(i.created)},
            {"updated", unix_seconds(i.updated)}};
  if (i.result) j["result"] = result_json(*i.result);
  if (!i.problem.empty()) j["problem"] = i.problem;
  return j;
}

inline int exit_code(const tt::result& r) {
  using tether::error;
  switch (r.outcome) {
    case tt::outcome::success: return 0;
    case tt::outcome::rejected: return 2;
    default: break;
  }
  if (r.error == error::invalid_url || r.error == error::invalid_argument || r.error == error::unsupported_scheme)
    return 1;
  return 3;
}

inline std::string seconds_text(double s) {
  char b[32];
  std::snprintf(b, sizeof b, s < 10 ? "%.1f s" : "%.0f s", s);
  return b;
}

/// Everything written to stderr: the progress (a redrawn bar on a terminal, a line every 2 s
/// otherwise once the rate is known, and a last line at 100%), retries and problems.
class reporter {
 public:
  void progress(const tt::progress& p) {
    std::lock_guard lk(mu_);
    const auto now = steady::now();
    auto& s = seen_[p.id];
    if (!s.first) s = {true, now, p.bytes_done};
    if (!tty_) {
      // Nothing worth printing before the rate is known; then at a bounded rate.
      if (p.bytes_per_second <= 0 || now - last_ < std::chrono::seconds{2}) return;
      last_ = now;
    }
    std::string eta = "?";
    if (p.eta) eta = seconds_text(static_cast<double>(p.eta->count()));
    draw(p.id, p.bytes_done, p.bytes_total, mib_per_s(p.bytes_per_second), "ETA " + eta);
  }

  /// The last line of a transfer that succeeded: 100%, the size and this run's average rate.
  void finished(const tt::result& r) {
    std::lock_guard lk(mu_);
    const auto it = seen_.find(r.id);
    std::string tail;
    if (it != seen_.end()) {
      const double secs = std::chrono::duration<double>(steady::now() - it->second.at).count();
      const auto moved = r.bytes_on_disk > it->second.bytes ? r.bytes_on_disk - it->second.bytes : 0;
      tail = "in " + seconds_text(secs);
      if (secs >= 0.05 && moved > 0) tail += " (" + mib_per_s(double(moved) / secs) + ")";
    }
    draw(r.id, r.bytes_on_disk, r.bytes_on_disk, tail.empty() ? "done" : tail, "");
    end_line();
  }

  void retry(const tt::retry_notice& n) {
    std::lock_guard lk(mu_);
    end_line();
    std::fprintf(stderr, "tether-transfer: %s: attempt %u failed: %s; retrying in %s\n", n.id.c_str(), n.attempt,
                 n.message.c_str(), seconds_text(double(n.delay.count()) / 1000.0).c_str());
  }

  void line(const std::string& text) {
    std::lock_guard lk(mu_);
    end_line();
    std::fprintf(stderr, "tether-transfer: %s\n", text.c_str());
  }

 private:
  static std::string mib_per_s(double bps) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB/s", bps / (1024.0 * 1024.0));
    return b;
  }
  void draw(const std::string& id, std::uint64_t done, std::optional<std::uint64_t> total, const std::string& rate,
            const std::string& eta) {
    const double mib = 1024.0 * 1024.0;
    char text[320];
    if (total && *total > 0) {
      const double frac = std::min(1.0, double(done) / double(*total));
      const int width = 30;
      std::string bar(static_cast<std::size_t>(frac * width), '#');
      bar.resize(width, '.');
      std::snprintf(text, sizeof text, "%s [%s] %5.1f%% %9.1f MiB  %s  %s", id.c_str(), bar.c_str(), frac * 100,
                    double(done) / mib, rate.c_str(), eta.c_str());
    } else {
      std::snprintf(text, sizeof text, "%s %9.1f MiB  %s", id.c_str(), double(done) / mib, rate.c_str());
    }
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", text);
      drawn_ = true;
    } else {
      std::fprintf(stderr, "%s\n", text);
    }
  }
  void end_line() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

  struct start {
    bool first = false;
    steady::time_point at;
    std::uint64_t bytes = 0;
  };
  std::mutex mu_;
  bool tty_ = ::isatty(2) != 0;
  bool drawn_ = false;
  steady::time_point last_{};
  std::map<std::string, start> seen_;
};

/// A hint for results whose cause a new user would not guess.
inline std::string hint_for(const tt::result& r, const std::string& protocol) {
  // The tus creation request (a POST) refused, or taken by a server that gave no upload URL.
  const bool creation = r.kind == tt::kind::upload && protocol == "tus" && r.message.rfind("POST ", 0) == 0;
  const auto st = r.http_status;
  if (creation && (st == 404 || st == 405 || st == 501 || (st >= 200 && st < 300)))
    return "the server does not seem to speak tus (it answered " + std::to_string(r.http_status) +
           "); for a plain HTTP upload use --protocol put";
  if (tether::is_tls_hostname_mismatch(r.error))
    return "the server's certificate does not name the host of the URL";
  if (auto h = tether_examples::network_hint(r.error); !h.empty()) return h;
  if (r.error.category() == tether::tls_verify_category())
    return "if you trust this server's CA, pass it with --ca FILE";
  return {};
}



/// A transfer's end as both modes print it: its JSON line on stdout; on stderr the 100% line,
/// or what went wrong with a hint.
inline void print_result(reporter& out, const tt::result& r, const std::string& protocol) {
  if (r.outcome == tt::outcome::success) out.finished(r);
  std::cout << result_json(r).dump() << std::endl;
  if (r.outcome != tt::outcome::success) {
    out.line(r.id + ": " + r.message);
    if (const auto hint = hint_for(r, protocol); !hint.empty()) out.line("hint: " + hint);
  }
}

}  // namespace transfer_cli
