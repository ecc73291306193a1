// chat_server: the chat example's server (Beast), plain or TLS.
//
//   chat_server --port P [--tls-cert F --tls-key F] [--host ADDR]
//
// Speaks tether envelopes: chat.join -> presence to everyone (and the online list to the
// joiner); chat.say -> chat.message with a server id and time to everyone, and chat.ack to
// the sender. Prints "listening on PORT" once ready.
#include "../chat_protocol.hpp"

#include <tether/ws/envelope.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <chrono>
#include <csignal>
#include <deque>
#include <iostream>
#include <list>
#include <memory>
#include <set>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using tether::error_code;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct peer {
  std::string name;
  std::deque<std::string> outq;  // bounded: a peer that cannot keep up is dropped
  asio::steady_timer wake, done;
  std::function<void()> kick;
  bool closing = false, writer_done = false;
  explicit peer(const asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()), done(ex, std::chrono::steady_clock::time_point::max()) {}
};

struct room {
  std::list<std::shared_ptr<peer>> peers;
  // Ids grow across restarts (they start from the clock), so a client's last seen id stays
  // meaningful after the server comes back.
  std::uint64_t next_id = static_cast<std::uint64_t>(now_ms()) * 1000;
  std::deque<chat::message> history;  // the last 1000 messages, replayed to (re)joiners
  static constexpr std::size_t history_limit = 1000;

  std::vector<std::string> online() const {
    std::set<std::string> names;
    for (auto& p : peers)
      if (!p->name.empty()) names.insert(p->name);
    return {names.begin(), names.end()};
  }
  void send(peer& p, const tether::ws::envelope& e) {
    if (p.outq.size() >= 1024) {
      if (p.kick) p.kick();
      return;
    }
    p.outq.push_back(tether::ws::encode_envelope(e));
    p.wake.cancel();
  }
  // Only to peers that have joined: a joiner gets the replay of what it missed first, then
  // live messages, so ids reach every client in increasing order.
  template <class T>
  void broadcast(const T& msg) {
    const tether::ws::envelope e{std::string(T::type), nlohmann::json(msg), {}, {}};
    for (auto& p : peers)
      if (!p->name.empty()) send(*p, e);
  }
};

template <class WS>
asio::awaitable<void> writer(WS& ws, std::shared_ptr<peer> p) {
  while (!p->closing) {
    if (p->outq.empty()) {
      p->wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await p->wake.async_wait(nothrow);
      continue;
    }
    const std::string text = std::move(p->outq.front());
    p->outq.pop_front();
    ws.text(true);
    auto [ec, n] = co_await ws.async_write(asio::buffer(text), nothrow);
    if (ec) break;
  }
  p->writer_done = true;
  p->done.cancel();
}

template <class WS>
asio::awaitable<void> session(WS ws, room& r) {
  auto ex = co_await asio::this_coro::executor;
  auto me = std::make_shared<peer>(ex);
  if constexpr (!std::is_same_v<WS, websocket::stream<tcp::socket>>) {
    auto [ec] = co_await ws.next_layer().async_handshake(asio::ssl::stream_base::server, nothrow);
    if (ec) co_return;
  }
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(64 * 1024);
  auto [aec] = co_await ws.async_accept(nothrow);
  if (aec) co_return;
  me->kick = [&ws] { beast::get_lowest_layer(ws).close(); };
  r.peers.push_back(me);
  asio::co_spawn(ex, writer(ws, me), asio::detached);
  beast::flat_buffer buf;
  for (;;) {
    buf.clear();
    auto [ec, n] = co_await ws.async_read(buf, nothrow);
    if (ec) break;
    const auto d = buf.cdata();
    auto e = tether::ws::decode_envelope(std::string_view(static_cast<const char*>(d.data()), d.size()));
    if (!e) {
      std::cerr << "bad envelope from " << (me->name.empty() ? "?" : me->name) << ": " << e.error().message() << '\n';
      continue;
    }
    try {
      if (e->type == chat::join::type) {
        auto j = e->payload.get<chat::join>();
        const bool first = me->name.empty();
        me->name = j.name;
        r.send(*me, {std::string(chat::presence::type), nlohmann::json(chat::presence{"online", j.name, r.online()}), {}, {}});
        for (const auto& m : r.history)
          if (m.id > j.last_id) r.send(*me, {std::string(chat::message::type), nlohmann::json(m), {}, {}});
        if (first) r.broadcast(chat::presence{"joined", j.name, {}});
        std::cerr << j.name << " joined\n";
      } else if (e->type == chat::say::type) {
        auto s = e->payload.get<chat::say>();
        chat::message m{r.next_id++, now_ms(), s.name, s.text};
        if (e->id) r.send(*me, {std::string(chat::ack::type), nlohmann::json(chat::ack{m.id, m.ts}), {}, e->id});
        r.history.push_back(m);
        if (r.history.size() > room::history_limit) r.history.pop_front();
        r.broadcast(m);
      }
    } catch (const std::exception& ex2) {
      std::cerr << "bad payload for " << e->type << ": " << ex2.what() << '\n';
    }
  }
  r.peers.remove(me);
  // Stop the writer and wait for it: it uses this frame's stream.
  me->closing = true;
  me->kick();
  me->wake.cancel();
  while (!me->writer_done) co_await me->done.async_wait(nothrow);
  if (!me->name.empty()) {
    bool still_here = false;
    for (auto& p : r.peers) still_here = still_here || p->name == me->name;
    if (!still_here) r.broadcast(chat::presence{"left", me->name, {}});
    std::cerr << me->name << " left\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned port = 0;
  std::string cert, key, host = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--port") port = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--tls-cert") cert = next();
    else if (a == "--tls-key") key = next();
    else if (a == "--host") host = next();
    else {
      std::cerr << "usage: chat_server --port P [--tls-cert F --tls-key F] [--host ADDR]\n";
      return 1;
    }
  }
  if (port > 65535 || cert.empty() != key.empty()) {
    std::cerr << "usage: chat_server --port P [--tls-cert F --tls-key F] [--host ADDR]\n";
    return 1;
  }
  asio::io_context ioc;
  std::unique_ptr<asio::ssl::context> tls;
  if (!cert.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->use_certificate_chain_file(cert);
    tls->use_private_key_file(key, asio::ssl::context::pem);
  }
  tcp::acceptor acc(ioc);
  const tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
  acc.open(ep.protocol());
  acc.set_option(asio::socket_base::reuse_address(true));
  acc.bind(ep);
  acc.listen();
  std::cout << "listening on " << acc.local_endpoint().port() << std::endl;
  room r;
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) { ioc.stop(); });
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, sock] = co_await acc.async_accept(nothrow);
          if (ec) co_return;
          if (tls)
            asio::co_spawn(ioc, session(websocket::stream<asio::ssl::stream<tcp::socket>>(std::move(sock), *tls), r),
                           asio::detached);
          else
            asio::co_spawn(ioc, session(websocket::stream<tcp::socket>(std::move(sock)), r), asio::detached);
        }
      },
      asio::detached);
  ioc.run();
  return 0;
}
