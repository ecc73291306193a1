// tether-transfer: crash-safe, resumable downloads and uploads from the command line.
//
//   tether-transfer --state DIR download URL DEST [--id ID] [--sha256 HEX]
//   tether-transfer --state DIR upload URL SRC [--id ID] [--protocol tus|put|post]
//   tether-transfer --state DIR resume      # finish every unfinished transfer in DIR
//   tether-transfer --state DIR list        # one JSON object per line
//   tether-transfer --state DIR cancel ID
//
// Common options: [--header 'K: V']... [--ca FILE] [--insecure] [--chunk-size BYTES]
// [--max-attempts N] [--bandwidth BYTES_PER_S] [--recv-buffer BYTES] [--checkpoint-bytes BYTES]
// [--max-unsynced BYTES]
//
// Exit codes: 0 success; 1 usage or bad input; 2 rejected by the server; 3 failed (retries
// or deadline exhausted, integrity mismatch). Progress goes to stderr (a live bar on a
// terminal, plain lines otherwise); one JSON result line per transfer goes to stdout. Without
// --id the id is derived from the URL and the file, so the same command again reattaches.
#include <tether/transfer.hpp>
#include <tether/transfer/detail/file.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace tt = tether::transfer;
using json = nlohmann::json;

int usage(const std::string& why = {}) {
  if (!why.empty()) std::cerr << "tether-transfer: " << why << "\n";
  std::cerr << "usage: tether-transfer --state DIR download URL DEST [--id ID] [--sha256 HEX]\n"
               "       tether-transfer --state DIR upload URL SRC [--id ID] [--protocol tus|put|post]\n"
               "       tether-transfer --state DIR resume | list | cancel ID\n"
               "options: [--header 'K: V']... [--ca FILE] [--insecure] [--chunk-size BYTES]\n"
               "         [--max-attempts N] [--bandwidth BYTES_PER_S] [--recv-buffer BYTES]\n"
               "         [--checkpoint-bytes BYTES] [--max-unsynced BYTES]\n";
  return 1;
}

std::optional<std::uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return std::nullopt;
  return std::stoull(s);
}

json error_json(const tether::error_code& ec) {
  if (!ec) return nullptr;
  return {{"category", ec.category().name()}, {"value", ec.value()}, {"text", ec.message()}};
}

json result_json(const tt::result& r) {
  json j = {{"id", r.id},
            {"kind", tt::to_string(r.kind)},
            {"outcome", tether::net::to_string(r.outcome)},
            {"error", error_json(r.error)},
            {"message", r.message},
            {"http_status", r.http_status},
            {"file", r.file.string()},
            {"final_url", r.final_url},
            {"sha256", r.sha256},
            {"bytes_on_disk", r.bytes_on_disk},
            {"bytes_received", r.bytes_received},
            {"bytes_expected", r.bytes_expected ? json(*r.bytes_expected) : json(nullptr)},
            {"attempts", r.attempts},
            {"restarts", r.restarts}};
  if (r.retry_after) j["retry_after_s"] = r.retry_after->count();
  if (!r.location.empty()) j["location"] = r.location;
  return j;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

json info_json(const tt::info& i) {
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

int exit_code(const tt::result& r) {
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

/// Progress on stderr: a redrawn bar on a terminal, a plain line per second otherwise.
class progress_printer {
 public:
  void operator()(const tt::progress& p) {
    std::lock_guard lk(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && now - last_ < std::chrono::seconds{1}) return;
    last_ = now;
    const double mib = 1024.0 * 1024.0;
    char line[256];
    if (p.bytes_total && *p.bytes_total > 0) {
      const double frac = double(p.bytes_done) / double(*p.bytes_total);
      const int width = 30;
      const int fill = static_cast<int>(frac * width);
      std::string bar(static_cast<std::size_t>(std::clamp(fill, 0, width)), '#');
      bar.resize(width, '.');
      std::snprintf(line, sizeof line, "%s [%s] %5.1f%% %8.1f MiB %7.1f MiB/s ETA %llds", p.id.c_str(), bar.c_str(),
                    frac * 100, double(p.bytes_done) / mib, p.bytes_per_second / mib,
                    static_cast<long long>(p.eta ? p.eta->count() : 0));
    } else {
      std::snprintf(line, sizeof line, "%s %8.1f MiB %7.1f MiB/s", p.id.c_str(), double(p.bytes_done) / mib,
                    p.bytes_per_second / mib);
    }
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", line);
      drawn_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line);
    }
  }
  void finish_line() {
    std::lock_guard lk(mu_);
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::mutex mu_;
  bool tty_ = ::isatty(2) != 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string state, id, sha256, protocol = "tus";
  tt::options opts;
  tt::request req;
  std::uint64_t chunk = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "--state" || a == "--id" || a == "--sha256" || a == "--protocol" || a == "--header" || a == "--ca" ||
        a == "--chunk-size" || a == "--max-attempts" || a == "--bandwidth" || a == "--recv-buffer" || a == "--checkpoint-bytes" ||
        a == "--max-unsynced") {
      auto v = value();
      if (!v) return usage(a + " needs a value");
      if (a == "--state") state = *v;
      else if (a == "--id") id = *v;
      else if (a == "--sha256") sha256 = *v;
      else if (a == "--protocol") protocol = *v;
      else if (a == "--ca") opts.tls.ca_file = *v;
      else if (a == "--header") {
        const auto colon = v->find(':');
        if (colon == std::string::npos || colon == 0) return usage("--header wants 'Name: value'");
        auto val = v->substr(colon + 1);
        while (!val.empty() && val.front() == ' ') val.erase(0, 1);
        req.headers.emplace_back(v->substr(0, colon), val);
      } else {
        auto n = parse_u64(*v);
        if (!n) return usage(a + " wants a non-negative integer");
        if (a == "--chunk-size") chunk = *n;
        else if (a == "--max-attempts") opts.retry.max_attempts = static_cast<std::uint32_t>(*n);
        else if (a == "--checkpoint-bytes") opts.checkpoint_bytes = *n;
        else if (a == "--max-unsynced") opts.max_unsynced_bytes = *n;
        else if (a == "--recv-buffer") opts.receive_buffer_bytes = std::min<std::uint64_t>(*n, 1u << 30);
        else opts.bandwidth_limit = *n;
      }
    } else if (a == "--insecure") {
      opts.tls.insecure_skip_verify = true;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (state.empty()) return usage("--state DIR is required");
  if (positional.empty()) return usage("no command");
  const std::string cmd = positional[0];
  const std::size_t want = cmd == "download" || cmd == "upload" ? 3 : cmd == "cancel" ? 2 : 1;
  if ((cmd != "download" && cmd != "upload" && cmd != "resume" && cmd != "list" && cmd != "cancel") ||
      positional.size() != want)
    return usage(positional.size() != want ? "wrong number of arguments for " + cmd : "unknown command " + cmd);

  progress_printer printer;
  opts.state_dir = state;
  opts.on_progress = [&printer](const tt::progress& p) { printer(p); };
  asio::io_context io;
  std::optional<tt::manager> mgr;
  try {
    mgr.emplace(io.get_executor(), opts);
  } catch (const std::exception& e) {
    std::cerr << "tether-transfer: " << e.what() << "\n";
    return 3;
  }

  // Every command that opens the directory says what is wrong in it, one line per problem.
  const auto known = mgr->list();
  for (const auto& i : known)
    if (!i.problem.empty()) std::cerr << "tether-transfer: " << i.id << ": " << i.problem << "\n";
  if (cmd == "list") {
    for (const auto& i : known) std::cout << info_json(i).dump() << "\n";
    return 0;
  }
  if (cmd == "cancel") {
    const auto ec = mgr->cancel(positional[1]);
    if (ec) {
      std::cerr << "tether-transfer: cancel " << positional[1] << ": " << ec.message() << "\n";
      return 1;
    }
    std::cout << json{{"id", positional[1]}, {"cancelled", true}}.dump() << std::endl;
    return 0;
  }

  int code = 0;
  auto emit = [&](const tt::result& r) {
    printer.finish_line();
    std::cout << result_json(r).dump() << std::endl;
    if (r.outcome != tt::outcome::success) std::cerr << "tether-transfer: " << r.id << ": " << r.message << "\n";
    code = std::max(code, exit_code(r));
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const tether::error_code& ec, int) {
    if (ec) return;
    std::cerr << "\ntether-transfer: interrupted; progress is kept, run the same command again to continue\n";
    code = 130;
    io.stop();
  });

  if (cmd == "resume") {
    mgr->resume_all([&](const std::vector<tt::result>& results) {
      for (const auto& r : results) emit(r);
      signals.cancel();
    });
  } else {
    req.url = positional[1];
    req.file = positional[2];
    req.sha256 = sha256;
    req.chunk_size = chunk;
    if (protocol == "tus") req.protocol = tt::upload_protocol::tus;
    else if (protocol == "put") req.protocol = tt::upload_protocol::put;
    else if (protocol == "post") req.protocol = tt::upload_protocol::post;
    else return usage("--protocol is tus, put or post");
    if (id.empty()) {
      std::error_code fec;
      const auto abs = std::filesystem::absolute(req.file, fec).lexically_normal().string();
      id = std::string(cmd == "download" ? "dl-" : "up-") +
           tether::transfer::detail::sha256_hex(req.url + "\n" + abs).substr(0, 16);
    }
    auto done = [&](const tt::result& r) {
      emit(r);
      signals.cancel();
    };
    if (cmd == "download")
      mgr->download(req, id, done);
    else
      mgr->upload(req, id, done);
  }
  io.run();
  mgr.reset();  // stops what still runs (after a signal) with its progress kept
  return code;
}
