// Hostile WebSocket servers: each attack ends in bounded time with a clear error and bounded
// memory. Time and peak RSS are printed (one ctest process per case, so RSS is the case's).
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>

#include "support/rss.hpp"

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

using tether::test::peak_rss_kib;

namespace {

// Connects once to `server` and returns how the attempt or connection ended.
ws::disconnected attack(ws::options o, std::chrono::milliseconds limit) {
  asio::io_context ioc;
  ws::disconnected d;
  const auto t0 = std::chrono::steady_clock::now();
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    d = co_await test::next_of<ws::disconnected>(c);
  }(), limit);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::printf("hostile: %s: %lld ms, peak RSS %ld KiB, error '%s'\n", Catch::getResultCapture().getCurrentTestName().c_str(),
              static_cast<long long>(took.count()), peak_rss_kib(), d.error.message().c_str());
  return d;
}

std::string frame_header(unsigned char b0, std::uint64_t len) {
  std::string h(1, static_cast<char>(b0));
  if (len < 126) {
    h += static_cast<char>(len);
  } else if (len < 65536) {
    h += static_cast<char>(126);
    h += static_cast<char>(len >> 8);
    h += static_cast<char>(len & 0xff);
  } else {
    h += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) h += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  return h;
}

}  // namespace

TEST_CASE("hostile: endless fragments end at max_message_size (1009)", "[hostile]") {
  test::ws_server server;
  std::string raw = frame_header(0x02, 4096) + std::string(4096, 'f');
  for (int i = 0; i < 2000; ++i) raw += frame_header(0x00, 4096) + std::string(4096, 'f');  // 8 MiB, never FIN
  server.set_raw(raw);
  auto o = test::fast_options(server.url());
  o.max_message_size = 1u << 20;
  auto d = attack(o, 20s);
  CHECK(d.error);
  CHECK(d.code == 1009);
  CHECK(peak_rss_kib() < tether::test::rss_bound_kib());
}

TEST_CASE("hostile: a 2^63-byte frame header is refused at once", "[hostile]") {
  test::ws_server server;
  server.set_raw(frame_header(0x82, 0x7fffffffffffffffull) + "xxxx");
  auto d = attack(test::fast_options(server.url()), 10s);
  CHECK(d.error);
  CHECK((d.code == 1009 || d.code == 1002));
  CHECK(peak_rss_kib() < tether::test::rss_bound_kib());
}

TEST_CASE("hostile: a handshake response with 10 MiB of headers is refused", "[hostile]") {
  test::ws_server server;
  std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  while (resp.size() < (10u << 20)) resp += "X-Filler: " + std::string(100, 'h') + "\r\n";
  server.set_raw_handshake(resp);
  auto d = attack(test::fast_options(server.url()), 10s);
  CHECK(d.error);
  CHECK(peak_rss_kib() < tether::test::rss_bound_kib());
}

TEST_CASE("hostile: a slowloris handshake ends at handshake_timeout", "[hostile]") {
  test::ws_server server;
  server.set_raw_handshake("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + std::string(10000, ' '), 100ms);
  auto o = test::fast_options(server.url());
  o.handshake_timeout = 1s;
  const auto t0 = std::chrono::steady_clock::now();
  auto d = attack(o, 10s);
  CHECK(d.error == error::handshake_timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}

TEST_CASE("hostile: a server that accepts and never answers the upgrade ends at handshake_timeout", "[hostile]") {
  test::ws_server mute;
  mute.set_raw_handshake("H", 60s);  // one byte, then nothing for a minute
  auto o = test::fast_options(mute.url());
  o.handshake_timeout = 500ms;
  auto d = attack(o, 10s);
  CHECK(d.error == error::handshake_timeout);
}
