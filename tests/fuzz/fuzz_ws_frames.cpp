// The WebSocket client's frame handling, fed by a fuzzed peer over an in-memory stream (a
// socketpair): the peer answers the handshake properly, then sends the input's bytes as its
// frames, cut into writes where the input says, and ends its side. Whatever arrives, the client
// must end the connection in bounded time, deliver only whole messages within
// max_message_size, only valid UTF-8 as text, and report one disconnection.
//
// Input: byte 0 = flags (bit 0: the client offers permessage-deflate and the peer accepts it;
// bit 1: the peer closes its socket at once after the bytes instead of half-closing and reading
// on; bits 2-7: cut the bytes into writes of value * 7 bytes, 0: one write); the rest (at most
// 8 KiB) = what the peer sends.
#include <tether/net/src.hpp>
#include <tether/ws/src.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/socket.h>

namespace {

namespace asio = boost::asio;
namespace ws = tether::ws;
using local = asio::local::stream_protocol;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_message = 4096;

bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3F);
    }
    static constexpr std::uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ws_frames: %s\n", what);
  std::abort();
}

asio::awaitable<void> peer(local::socket& s, std::string bytes, bool deflate, bool abrupt, std::size_t cut) {
  std::string req;
  auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(req), "\r\n\r\n", nothrow);
  if (ec) co_return;
  const auto at = req.find("Sec-WebSocket-Key: ");
  if (at == std::string::npos) fail("no Sec-WebSocket-Key in the request");
  const auto key = req.substr(at + 19, req.find("\r\n", at) - at - 19);
  std::string res = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: " + ws::detail::key_rewriter::accept_for(key) + "\r\n";
  if (deflate) res += "Sec-WebSocket-Extensions: permessage-deflate\r\n";
  res += "\r\n";
  co_await asio::async_write(s, asio::buffer(res), nothrow);
  for (std::size_t off = 0; off < bytes.size(); off += cut) {
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(bytes.data() + off, std::min(cut, bytes.size() - off)), nothrow);
    if (wec) co_return;
  }
  boost::system::error_code ig;
  if (abrupt) {
    s.close(ig);
    co_return;
  }
  s.shutdown(local::socket::shutdown_send, ig);
  // Take what the client sends (its close frame, pongs) until it goes away.
  char sink[4096];
  for (;;) {
    auto [rec, rn] = co_await s.async_read_some(asio::buffer(sink), nothrow);
    if (rec) break;
  }
  s.close(ig);
}

asio::awaitable<void> application(ws::client& c, bool& done) {
  int disconnections = 0;
  for (int events = 0; events < 100'000; ++events) {
    auto [ec, ev] = co_await c.async_next_event(nothrow);
    if (ec) break;  // the client ended
    if (auto* m = std::get_if<ws::message>(&ev)) {
      if (m->data.size() > max_message) fail("a message over max_message_size was delivered");
      if (m->is_text() && !valid_utf8(m->data)) fail("invalid UTF-8 delivered as text");
    } else if (auto* d = std::get_if<ws::disconnected>(&ev)) {
      if (++disconnections > 1) fail("two disconnections without reconnecting");
      if (d->code == 1005 || (d->code < 1000 && d->code != 0)) fail("an impossible close code was reported");
      break;
    }
  }
  done = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 8193) return 0;
  const unsigned flags = data[0];
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  asio::io_context ioc;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair");
  local::socket server_end(ioc);
  server_end.assign(local(), sv[1]);

  ws::options o;
  o.url = "ws://fuzz.invalid/";
  o.reconnect.enabled = false;
  o.max_message_size = max_message;
  o.permessage_deflate = (flags & 1) != 0;
  o.ping_interval = std::chrono::milliseconds{0};
  o.close_timeout = std::chrono::milliseconds{50};
  o.handshake_timeout = std::chrono::milliseconds{1000};
  o.read_buffer_size = 1024;
  bool done = false;
  {
    ws::client c(ioc.get_executor(), o);
    ws::detail::client_access::impl(c).connector = [fd = sv[0]](asio::ip::tcp::socket& s) {
      boost::system::error_code ec;
      s.assign(asio::ip::tcp::v4(), fd, ec);
      return ec;
    };
    c.async_run(asio::detached);
    asio::co_spawn(ioc, peer(server_end, bytes, (flags & 1) != 0, (flags & 2) != 0, (flags >> 2) ? (flags >> 2) * 7u : bytes.size() + 1),
                   asio::detached);
    asio::co_spawn(ioc, application(c, done), asio::detached);
    ioc.run_for(std::chrono::seconds{5});
    if (!done) fail("the client did not end the connection within 5 s");
  }
  ioc.restart();
  ioc.run_for(std::chrono::seconds{1});  // the client's close after its destructor
  return 0;
}
