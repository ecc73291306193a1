// tether-transfer --agent: the transfer runs in tether-agent; this process hands it over, shows
// its progress and prints its result (or only its id, with --detach).
#include "agent_mode.hpp"
#include "output.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <filesystem>
#include <iostream>
#include <optional>

namespace transfer_cli {

namespace asio = boost::asio;

namespace {

/// tether-agent beside this program, if there is one.
std::filesystem::path sibling_agent() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto p = self.parent_path() / "tether-agent";
  return std::filesystem::exists(p, ec) ? p : std::filesystem::path{};
}

}  // namespace

int agent_main(const agent_args& ag, const std::vector<std::string>& positional, const tt::request& req,
               const std::string& id, const std::string& protocol) {
  if (positional.empty()) return usage_error("no command (download, upload, wait, list, cancel or remove)");
  const auto& cmd = positional[0];
  if (cmd != "download" && cmd != "upload" && cmd != "wait" && cmd != "list" && cmd != "cancel" && cmd != "remove")
    return usage_error("with --agent, the commands are download, upload, wait, list, cancel and remove");
  const std::size_t want = cmd == "download" || cmd == "upload" ? 3 : cmd == "list" ? 1 : 2;
  if (positional.size() != want) return usage_error("wrong number of arguments for " + cmd);
  if (ag.detach && cmd != "download" && cmd != "upload") return usage_error("--detach goes with download and upload");

  reporter out;
  tt::agent_client_options o;
  if (!ag.socket.empty()) o.socket_path = ag.socket;
  o.session = ag.session.empty() ? "tether-transfer" : ag.session;
  if (!ag.no_start) o.start_program = sibling_agent();
  if (!ag.state.empty()) o.start_state = std::filesystem::absolute(ag.state);
  o.on_progress = [&out](const tt::progress& p) { out.progress(p); };
  o.on_retry = [&out](const tt::retry_notice& n) { out.retry(n); };
  o.log.min_level = tether::net::log_level::warn;
  o.log.sink = [&out](tether::net::log_level, std::string_view line) { out.line(std::string(line)); };
  asio::io_context io;
  std::optional<tt::agent_client> client;
  client.emplace(io.get_executor(), o);
  int code = 0;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  // Closing the client sends the acknowledgements it owes; then nothing is left to run.
  auto stop = [&] {
    client.reset();
    signals.cancel();
  };
  auto emit = [&](const tt::result& r) {
    print_result(out, r, protocol);
    code = r.error == tether::error::not_found ? 1 : exit_code(r);
    stop();
  };
  auto done = [&](const std::string& what, const std::string& key) {
    return [&, what, key](tether::error_code ec) {
      if (ec) {
        out.line(what + " " + positional.back() + ": " + ec.message());
        code = ec == tether::error::not_found || ec == tether::error::invalid_argument ? 1 : 3;
      } else {
        std::cout << json{{"id", positional.back()}, {key, true}}.dump() << std::endl;
      }
      stop();
    };
  };
  signals.async_wait([&](const tether::error_code& ec, int) {
    if (ec) return;
    out.line("interrupted; the transfer goes on in the agent (tether-transfer --agent wait " + id + " gets its result)");
    code = 130;
    stop();
  });
  const auto k = cmd == "upload" ? tt::kind::upload : tt::kind::download;
  if ((cmd == "download" || cmd == "upload") && ag.detach) {
    client->submit(k, req, id, [&](tether::error_code ec) {
      if (ec) {
        out.line("the agent did not take " + id + ": " + ec.message());
        code = 3;
      } else {
        std::cout << id << std::endl;
      }
      stop();
    });
  } else if (cmd == "download") {
    client->download(req, id, emit);
  } else if (cmd == "upload") {
    client->upload(req, id, emit);
  } else if (cmd == "wait") {
    client->wait(positional[1], emit);
  } else if (cmd == "list") {
    client->list([&](tether::error_code ec, const std::vector<tt::info>& all) {
      if (ec) {
        out.line("list: " + ec.message());
        code = 3;
      }
      for (const auto& i : all) std::cout << info_json(i).dump() << "\n";
      stop();
    });
  } else if (cmd == "cancel") {
    client->cancel(positional[1], done("cancel", "cancelled"));
  } else {
    client->remove(positional[1], done("remove", "removed"));
  }
  io.run();
  return code;
}


}  // namespace transfer_cli
