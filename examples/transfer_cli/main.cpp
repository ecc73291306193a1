// tether-transfer: crash-safe, resumable downloads and uploads from the command line.
// `tether-transfer --help` is the manual (help_text below); the contract is in DESIGN.md.
#include <tether/transfer.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/version.hpp>

#include "../network_flags.hpp"
#include "agent_mode.hpp"
#include "output.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace transfer_cli;
namespace asio = boost::asio;
namespace tt = tether::transfer;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr const char* help_text = R"(usage: tether-transfer --state DIR download URL DEST [--id ID] [--sha256 HEX]
       tether-transfer --state DIR upload URL SRC [--id ID] [--protocol tus|put|post]
       tether-transfer --state DIR resume
       tether-transfer --state DIR list
       tether-transfer --state DIR cancel ID
       tether-transfer --agent [PATH] download URL DEST [--id ID] [--sha256 HEX] [--detach]
       tether-transfer --agent [PATH] upload URL SRC [--id ID] [--protocol tus|put] [--detach]
       tether-transfer --agent [PATH] wait ID
       tether-transfer --agent [PATH] list | cancel ID | remove ID

Crash-safe, resumable HTTP(S) downloads and uploads. Progress is checkpointed in DIR; if
the program is killed or the network fails, the same command again (or `resume`)
continues where the last checkpoint left off, after checking that the bytes kept still
belong to the same version of the content. Options may come before or after the command.

COMMANDS
  download URL DEST  fetch URL into DEST (replaced only once complete and verified);
                     resumes with Range/If-Range when the server allows it
  upload URL SRC     send SRC: with tus (resumable, the default), or one PUT or POST
  resume             finish every unfinished transfer recorded in DIR
  list               one JSON object per transfer in DIR, on stdout
  cancel ID          cancel a transfer and delete its partial data

WHERE STATE LIVES
  --state DIR        required. Records (one JSON file per transfer) and partial
                     downloads live here; created with mode 0700 if missing. Several
                     processes may share it: each transfer is locked by its runner.
  --id ID            names the transfer (default: derived from URL and file, so running
                     the same command again reattaches to it)

IN THE AGENT
  --agent [PATH]     hand the transfer to tether-agent listening on PATH (default
                     $XDG_RUNTIME_DIR/tether/agent.sock): it goes on if this program is
                     killed, and its result waits for the session until someone takes
                     it (wait, or download/upload run to their end). When no agent
                     answers, one is started (tether-agent beside this program) with
                     --state DIR, default $XDG_STATE_HOME/tether/agent.
  --detach           print the id and exit 0 at once
  --session NAME     whose transfers these are (default tether-transfer)
  --no-start         do not start an agent when none answers
  wait ID            until the transfer ends: its JSON result line, exit code as download
  remove ID          forget a transfer (cancelled if running); its result too
  Network and retry options belong to the agent and are refused here with --agent.

OPTIONS
  --sha256 HEX          the content's expected SHA-256: a mismatch fails (exit 3)
  --report-sha256       compute the content's SHA-256 and report it in the result
  --protocol P          uploads: tus (default), put or post
  --header 'Name: value'  an extra request header (repeatable). Accept-Encoding is
                        refused for downloads: they are stored exactly as served
  --ca FILE             also trust the CA certificates in FILE (PEM)
  --insecure            do not verify the server's certificate (testing only)
  --proxy URL           through this proxy: http://[user:pass@]HOST[:PORT] (CONNECT),
                        https://... (CONNECT over TLS, verified with --ca and the system
                        store; port 443), socks5://... (names resolved here) or
                        socks5h://... (by the proxy); default port 1080. Without it: the
                        environment as curl reads it (http_proxy, https_proxy,
                        all_proxy, no_proxy);
                        --proxy '' connects directly
  --pin sha256//BASE64  also require this public key (SHA-256 of the certificate's
                        SubjectPublicKeyInfo) in the verified chain; repeatable
  --max-attempts N      attempts in a row that bring no new bytes before giving up,
                        the first included (default 9; 1: no retry; 0: until the
                        deadline). Waits between them: 0.5 s doubling to 30 s, jittered
  --bandwidth B         limit to B bytes per second across transfers (default: none)
  --chunk-size B        tus PATCH size in bytes (default 8 MiB)
  --checkpoint-bytes B  sync and record a digest every B bytes (default 4 MiB;
                        a multiple of 64 KiB)
  --max-unsynced B      how far a download may run ahead of what is synced (default
                        8 MiB): a crash re-fetches at most about this much
  --recv-buffer B       socket receive buffer in bytes (default: the kernel's)
  --connections N       fetch a download over up to N connections at once, each its
                        own Range (default 4, at most 16; 1: one connection). Only
                        when a strong validator or --sha256 proves the bytes.
                        The first connection starts alone; the others open once it
                        spends 80% of its time waiting for data (the network is the
                        limit, not this machine)
  --connections-at-once open all the connections from the start, as aria2 does
  --min-segment B       no segment smaller than B bytes (default 4 MiB)
  --max-idle N          idle connections kept for the next request to the same
                        server (default 8; 0: a new connection for every request)
  -h, --help            print this help on stdout and exit 0
  --version             print the version and exit 0

OUTPUT
  stdout: one JSON result line per transfer: id, kind, outcome (success, rejected,
          retry_later, failed), error, message, http_status, file, final_url,
          sha256 (when known), attempts, restarts; downloads: bytes_on_disk and
          bytes_received; uploads: bytes_sent and bytes_acknowledged.
  stderr: progress (a live bar on a terminal; otherwise a line every 2 s once the rate
          is known, and a last line at 100%), one line per retry (attempt, cause,
          delay), and what went wrong.
  Downloaded files are created with mode 0666 less the umask, as curl does.

EXIT STATUS
  0  success
  1  bad usage or bad input (unknown option, bad value, unusable URL or file)
  2  rejected by the server (a 4xx other than 408/425/429)
  3  failed: retries or deadline exhausted, a server error that persisted, integrity
     mismatch, or the server asked to retry later (the transfer stays resumable)
  130 interrupted (SIGINT/SIGTERM): progress is kept; run the same command again
)";

std::optional<std::uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return std::nullopt;
  return std::stoull(s);
}

bool is_command(const std::string& w) {
  return w == "download" || w == "upload" || w == "resume" || w == "list" || w == "cancel" || w == "wait" ||
         w == "remove";
}

/// Without --id: derived from the URL and the absolute file, so the same command reattaches.
std::string default_id(const std::string& cmd, const tt::request& req) {
  std::error_code fec;
  const auto abs = std::filesystem::absolute(req.file, fec).lexically_normal().string();
  return std::string(cmd == "download" ? "dl-" : "up-") +
         tether::transfer::detail::sha256_hex(req.url + "\n" + abs).substr(0, 16);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string state, id, sha256, protocol = "tus";
  tt::options opts;
  tt::request req;
  std::uint64_t chunk = 0;
  agent_args ag;
  std::string manager_only;  // the last option that configures a manager of our own
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "--ca" || a == "--insecure" || a == "--proxy" || a == "--pin" || a == "--max-attempts" ||
        a == "--checkpoint-bytes" || a == "--max-unsynced" || a == "--recv-buffer" || a == "--report-sha256" ||
        a == "--connections" || a == "--connections-at-once" || a == "--min-segment" || a == "--max-idle")
      manager_only = a;
    if (a == "--agent") {
      ag.on = true;
      // PATH is optional: a following word that is not a command or an option is it.
      if (i + 1 < argc && argv[i + 1][0] != '-' && !is_command(argv[i + 1])) ag.socket = argv[++i];
    } else if (a == "--detach") {
      ag.detach = true;
    } else if (a == "--no-start") {
      ag.no_start = true;
    } else if (a == "--session") {
      auto v = value();
      if (!v) return usage_error(a + " needs a value");
      ag.session = *v;
    } else if (a == "--state" || a == "--id" || a == "--sha256" || a == "--protocol" || a == "--header" || a == "--ca" ||
        a == "--chunk-size" || a == "--max-attempts" || a == "--bandwidth" || a == "--recv-buffer" ||
        a == "--checkpoint-bytes" || a == "--max-unsynced" || a == "--proxy" || a == "--pin" ||
        a == "--connections" || a == "--min-segment" || a == "--max-idle") {
      auto v = value();
      if (!v) return usage_error(a + " needs a value");
      if (a == "--state") state = *v;
      else if (a == "--id") id = *v;
      else if (a == "--sha256") sha256 = *v;
      else if (a == "--protocol") protocol = *v;
      else if (a == "--proxy") {
        if (auto e = tether_examples::apply_proxy_flag(opts.proxy, *v); !e.empty()) return usage_error(e);
      } else if (a == "--pin") {
        if (auto e = tether_examples::apply_pin_flag(opts.tls, *v); !e.empty()) return usage_error(e);
      } else if (a == "--ca") {
        if (std::ifstream probe(*v); !probe) return usage_error("--ca " + *v + ": " + std::error_code(errno, std::generic_category()).message());
        opts.tls.ca_file = *v;
      } else if (a == "--header") {
        const auto colon = v->find(':');
        if (colon == std::string::npos || colon == 0) return usage_error("--header '" + *v + "': expected 'Name: value'");
        auto val = v->substr(colon + 1);
        while (!val.empty() && val.front() == ' ') val.erase(0, 1);
        req.headers.emplace_back(v->substr(0, colon), val);
      } else {
        auto n = parse_u64(*v);
        if (!n) return usage_error(a + " '" + *v + "': expected a non-negative integer");
        if (a == "--chunk-size") chunk = *n;
        else if (a == "--max-attempts") opts.retry.max_attempts = static_cast<std::uint32_t>(std::min<std::uint64_t>(*n, 1u << 30));
        else if (a == "--checkpoint-bytes") opts.checkpoint_bytes = *n;
        else if (a == "--max-unsynced") opts.max_unsynced_bytes = *n;
        else if (a == "--recv-buffer") opts.receive_buffer_bytes = std::min<std::uint64_t>(*n, 1u << 30);
        else if (a == "--connections") {
          if (*n < 1 || *n > 16) return usage_error("--connections " + *v + ": expected 1 to 16");
          opts.connections_per_download = static_cast<std::uint32_t>(*n);
        } else if (a == "--min-segment") opts.min_segment_bytes = *n;
        else if (a == "--max-idle") opts.max_idle_connections = static_cast<std::uint32_t>(std::min<std::uint64_t>(*n, 1024));
        else opts.bandwidth_limit = *n;
      }
    } else if (a == "--insecure") {
      opts.tls.insecure_skip_verify = true;
    } else if (a == "--connections-at-once") {
      opts.ramp_connections = false;
    } else if (a == "--report-sha256") {
      opts.report_sha256 = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << help_text;
      return 0;
    } else if (a == "--version") {
      std::cout << "tether-transfer " TETHER_VERSION_STRING "\n";
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option '" + a + "'");
    } else {
      positional.push_back(a);
    }
  }
  if (protocol != "tus" && protocol != "put" && protocol != "post")
    return usage_error("--protocol '" + protocol + "': expected tus, put or post");
  if (!positional.empty() && (positional[0] == "download" || positional[0] == "upload") && positional.size() == 3) {
    req.url = positional[1];
    req.file = positional[2];
    req.sha256 = sha256;
    req.chunk_size = chunk;
    req.protocol = protocol == "put" ? tt::upload_protocol::put
                   : protocol == "post" ? tt::upload_protocol::post
                                        : tt::upload_protocol::tus;
    if (id.empty()) id = default_id(positional[0], req);
  }
  if (ag.on) {
    if (!manager_only.empty()) return usage_error(manager_only + " configures the agent's transfers, not one handed to it");
    req.bandwidth_limit = opts.bandwidth_limit;
    ag.state = state;
    return agent_main(ag, positional, req, id, protocol);
  }
  if (ag.detach || ag.no_start || !ag.session.empty()) return usage_error("--detach, --session and --no-start go with --agent");
  if (state.empty()) return usage_error("--state DIR is required");
  if (positional.empty()) return usage_error("no command (download, upload, resume, list or cancel)");
  const std::string cmd = positional[0];
  if (cmd != "download" && cmd != "upload" && cmd != "resume" && cmd != "list" && cmd != "cancel")
    return usage_error("unknown command '" + cmd + "'");
  const std::size_t want = cmd == "download" || cmd == "upload" ? 3 : cmd == "cancel" ? 2 : 1;
  if (positional.size() != want) return usage_error("wrong number of arguments for " + cmd);
  if (opts.checkpoint_bytes < (64u << 10) || opts.checkpoint_bytes % (64u << 10) != 0)
    return usage_error("--checkpoint-bytes " + std::to_string(opts.checkpoint_bytes) + ": expected a multiple of 65536");

  reporter out;
  opts.state_dir = state;
  opts.on_progress = [&out](const tt::progress& p) { out.progress(p); };
  opts.on_retry = [&out](const tt::retry_notice& n) { out.retry(n); };
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
    if (!i.problem.empty()) out.line(i.id + ": " + i.problem);
  if (cmd == "list") {
    for (const auto& i : known) std::cout << info_json(i).dump() << "\n";
    return 0;
  }
  if (cmd == "cancel") {
    const auto ec = mgr->cancel(positional[1]);
    if (ec) {
      out.line("cancel " + positional[1] + ": " + ec.message());
      return 1;
    }
    std::cout << json{{"id", positional[1]}, {"cancelled", true}}.dump() << std::endl;
    return 0;
  }

  int code = 0;
  auto emit = [&](const tt::result& r) {
    print_result(out, r, protocol);
    code = std::max(code, exit_code(r));
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const tether::error_code& ec, int) {
    if (ec) return;
    out.line("interrupted; progress is kept, run the same command again to continue");
    code = 130;
    io.stop();
  });

  if (cmd == "resume") {
    mgr->resume_all([&](const std::vector<tt::result>& results) {
      for (const auto& r : results) emit(r);
      signals.cancel();
    });
  } else {
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
