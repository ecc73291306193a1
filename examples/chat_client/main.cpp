// chat_client: a terminal chat on tether::ws::client and envelopes.
//
//   chat_client --url ws://HOST:P/chat --name NAME [--ca FILE] [--insecure]
//
// Reads lines from stdin and sends them as chat messages; prints messages, joins and leaves,
// and the connection state. A line typed while the server is away is queued, shown as
// pending, sent after the reconnect and marked delivered when the server acknowledges it.
// "/quit" (or end of input) leaves.
#include "../chat_protocol.hpp"

#include <tether/ws.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::mutex out_mu;
template <class... A>
void say_line(const A&... parts) {
  std::lock_guard lk(out_mu);
  (std::cout << ... << parts) << std::endl;  // flushed per line
}

std::string clock_text(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  tether::ws::options o;
  std::string name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--url") o.url = next();
    else if (a == "--name") name = next();
    else if (a == "--ca") o.tls.ca_file = next();
    else if (a == "--insecure") o.tls.insecure_skip_verify = true;
    else {
      std::cerr << "usage: chat_client --url ws://HOST:P/chat --name NAME [--ca FILE] [--insecure]\n";
      return 1;
    }
  }
  if (o.url.empty() || name.empty()) {
    std::cerr << "usage: chat_client --url ws://HOST:P/chat --name NAME [--ca FILE] [--insecure]\n";
    return 1;
  }
  o.ping_interval = 5s;
  o.pong_timeout = 5s;
  o.reconnect.backoff.initial = 500ms;
  o.reconnect.backoff.max = 5s;
  o.reconnect.stable_after = 3s;

  asio::io_context ioc;
  tether::ws::client client(ioc.get_executor(), o);
  tether::ws::envelope_channel chan(client);
  std::map<std::string, std::string> pending;  // envelope id -> text, until acknowledged
  int exit_code = 0;

  // The newest message id seen: sent when (re)joining so the server replays what was missed;
  // anything at or below it is a replay we already showed.
  std::uint64_t last_id = 0;
  chan.on<chat::message>([&](const chat::message& m, const tether::ws::envelope&) {
    if (m.id <= last_id) return;
    last_id = m.id;
    if (m.from != name) say_line("[", clock_text(m.ts), "] ", m.from, ": ", m.text);
  });
  chan.on<chat::ack>([&](chat::ack a, const tether::ws::envelope& e) {
    if (!e.reply_to) return;
    auto it = pending.find(*e.reply_to);
    if (it == pending.end()) return;
    say_line("[", clock_text(a.ts), "] ", name, ": ", it->second, "  (delivered #", a.id, ")");
    pending.erase(it);
  });
  chan.on<chat::presence>([&](const chat::presence& p, const tether::ws::envelope&) {
    if (p.event == "online") {
      std::string list;
      for (auto& n : p.online) list += (list.empty() ? "" : ", ") + n;
      say_line("* online: ", list);
    } else if (p.name != name) {
      say_line("* ", p.name, " ", p.event);
    }
  });
  chan.on_error([](const tether::ws::envelope_error& e) {
    say_line("* ignored a bad message (", e.error.message(), e.type.empty() ? "" : " for " + e.type, ")");
  });

  say_line("* connecting to ", o.url, " as ", name);
  client.async_run([&](tether::error_code ec) {
    if (ec) {
      say_line("* stopped: ", ec.message());
      exit_code = 1;
    }
  });
  asio::co_spawn(
      ioc,
      chan.run([&](const tether::ws::event& ev) {
        if (std::holds_alternative<tether::ws::connected>(ev)) {
          say_line("* connected");
          chan.async_send(chat::join{name, last_id}, asio::detached);
        } else if (auto* r = std::get_if<tether::ws::reconnecting>(&ev)) {
          char delay[32];
          std::snprintf(delay, sizeof delay, "%.1f", static_cast<double>(r->delay.count()) / 1000.0);
          say_line("* reconnecting in ", delay, " s (attempt ", r->attempt, ")");
        } else if (auto* d = std::get_if<tether::ws::disconnected>(&ev)) {
          say_line("* disconnected", d->error ? " (" + d->error.message() + ")" : std::string());
        }
      }),
      asio::detached);

  std::thread input([&] {
    std::string line;
    std::uint64_t n = 0;
    while (std::getline(std::cin, line)) {
      if (line == "/quit") break;
      if (line.empty()) continue;
      const std::string id = name + "-" + std::to_string(++n) + "-" + std::to_string(::getpid());
      asio::post(ioc, [&, id, line] {
        pending[id] = line;
        if (client.state() != tether::ws::connection_state::open) say_line("* (pending) ", line);
        chan.async_send(chat::say{name, line},
                        [&, id](tether::error_code ec) {
                          if (ec) {
                            say_line("* not sent: ", pending[id], " (", ec.message(), ")");
                            pending.erase(id);
                          }
                        },
                        id);
      });
    }
    // Leave once every typed line is acknowledged (at most 3 s), then close.
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer t(ioc);
          for (int i = 0; i < 60 && !pending.empty() && client.state() != tether::ws::connection_state::closed; ++i) {
            t.expires_after(50ms);
            co_await t.async_wait(asio::use_awaitable);
          }
          client.close(1000, "bye");
        },
        asio::detached);
  });
  ioc.run();
  input.detach();  // stdin may still be open if the client stopped on its own
  return exit_code;
}
