// Strict RFC 6455 client behaviour: each violation by the server is answered with the right
// close code (seen from the server's side, raw), and reported to the application.
#include "fixtures/ws_server.hpp"
#include "support/run.hpp"
#include "support/ws_helpers.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace tether;
namespace asio = boost::asio;

namespace {

// The close code the client answers `raw_bytes` with; with `later`, the code it answers those
// bytes with, sent once the client has the first message of `raw_bytes`.
std::uint16_t code_after(const std::string& raw_bytes, std::size_t max_message = 1u << 20,
                         const std::string& later = "", const std::string& rest = "") {
  test::ws_server server;
  server.set_raw(raw_bytes);
  asio::io_context ioc;
  ws::disconnected d;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.reconnect.enabled = false;
    o.max_message_size = max_message;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    if (!later.empty()) {
      const auto first = co_await test::next_of<ws::message>(c);
      CHECK(first == ws::message::binary("first"));
      server.send_raw_all(later);
    }
    if (!rest.empty()) {
      const auto fine = co_await test::next_of<ws::message>(c);
      CHECK(fine == ws::message::binary("fine"));
      server.send_raw_all(rest);
    }
    d = co_await test::next_of<ws::disconnected>(c);
  }());
  CHECK(d.error);  // reported as an error, not a clean close
  server.wait_for([&] { return !server.close_codes().empty(); }, 5s);
  auto codes = server.close_codes();
  return codes.empty() ? 0 : codes.front();
}

std::string frame(unsigned char b0, const std::string& payload) {
  std::string f;
  f += static_cast<char>(b0);
  if (payload.size() < 126) {
    f += static_cast<char>(payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(126);
    f += static_cast<char>((payload.size() >> 8) & 0xff);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((std::uint64_t{payload.size()} >> (8 * i)) & 0xff);
  }
  return f + payload;
}

// A client of `server` (messages up to `max_message`), started and past the server's first
// message, "first".
asio::awaitable<ws::client> client_after_first(const test::ws_server& server, std::size_t max_message) {
  auto o = test::fast_options(server.url());
  o.max_message_size = max_message;
  auto ex = co_await asio::this_coro::executor;
  ws::client c(ex, o);
  c.async_run(asio::detached);
  const auto m = co_await test::next_of<ws::message>(c);
  CHECK(m == ws::message::binary("first"));
  co_return c;
}

// Whether the server got a pong with `payload` (within 5 s).
bool pong_seen(test::ws_server& server, const std::string& payload) {
  return server.wait_for([&] {
    for (auto& f : server.raw_frames())
      if (f.opcode == 0xA && f.payload == payload) return true;
    return false;
  }, 5s);
}

}  // namespace

TEST_CASE("protocol: reserved bits set without an extension -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0xC1, "hi")) == 1002);
}
TEST_CASE("protocol: unknown opcode -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x83, "x")) == 1002);
}
TEST_CASE("protocol: fragmented control frame -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x09, "p")) == 1002);
}
TEST_CASE("protocol: oversized control frame -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x89, std::string(200, 'p'))) == 1002);
}
TEST_CASE("protocol: continuation without a start -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x80, "cont")) == 1002);
}
TEST_CASE("protocol: new message inside a fragmented one -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x01, "part") + frame(0x81, "whole")) == 1002);
}
TEST_CASE("protocol: invalid UTF-8 in text -> 1007", "[ws][protocol]") {
  CHECK(code_after(frame(0x81, "\xc3\x28")) == 1007);
}
TEST_CASE("protocol: invalid close code -> 1002", "[ws][protocol]") {
  CHECK(code_after(frame(0x88, std::string("\x03\xe7", 2))) == 1002);   // 999
  CHECK(code_after(frame(0x88, std::string("\x03\xee", 2))) == 1002);   // 1006 is never sent
}
TEST_CASE("protocol: masked frame from the server -> 1002", "[ws][protocol]") {
  CHECK(code_after(std::string("\x81\x82\x01\x02\x03\x04\x69\x6b", 8)) == 1002);
}
TEST_CASE("protocol: message over max_message_size -> 1009", "[ws][protocol]") {
  CHECK(code_after(frame(0x82, std::string(5000, 'b')), 1000) == 1009);
}
TEST_CASE("protocol: fragmented message is reassembled", "[ws][protocol]") {
  test::ws_server server;
  server.set_raw(frame(0x01, "hel") + frame(0x00, "lo ") + frame(0x89, "ping-in-between") + frame(0x80, "world"));
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    auto m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::text("hello world"));
    c.close();
  }());
  // The ping in the middle was answered with a pong carrying its payload.
  CHECK(pong_seen(server, "ping-in-between"));
}

// The reader waits for the peer's next bytes without Beast only while nothing it holds asks
// for an answer: a ping that arrived behind the last message is answered at once, while the
// application waits for more (not only once a later message or the close comes).
TEST_CASE("protocol: a ping behind the last message is answered while the client waits for more", "[ws][protocol]") {
  test::ws_server server;
  server.set_raw(frame(0x82, "first") + frame(0x89, "behind"));
  asio::io_context ioc;
  asio::steady_timer answered(ioc, asio::steady_timer::time_point::max());
  bool pong = false;
  std::thread watcher([&] {
    pong = server.wait_for([&] {
      for (auto& f : server.raw_frames())
        if (f.opcode == 0xA && f.payload == "behind") return true;
      return false;
    }, 5s);
    asio::post(ioc, [&] { answered.cancel(); });
  });
  struct joiner {
    std::thread& t;
    ~joiner() { t.join(); }
  } join_watcher{watcher};
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    auto m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary("first"));
    co_await answered.async_wait(test::nothrow);  // the server saw the pong, or 5 s passed
    c.close();
  }());
  CHECK(pong);
}

// Behind a complete message in the same write, a violation has wholly arrived when the reader
// gets to it, so it is read by the synchronous path (frame_counter): the close frame Beast
// answers with there must still reach the server, with the same code.
TEST_CASE("protocol: violations read synchronously behind a message get the same codes", "[ws][protocol]") {
  const std::string first = frame(0x82, "first");
  CHECK(code_after(first + frame(0xC1, "hi")) == 1002);
  CHECK(code_after(first + frame(0x83, "x")) == 1002);
  CHECK(code_after(first + frame(0x80, "cont")) == 1002);
  CHECK(code_after(first + frame(0x81, "\xc3\x28")) == 1007);
  CHECK(code_after(first + std::string("\x81\x82\x01\x02\x03\x04\x69\x6b", 8)) == 1002);
  CHECK(code_after(first + frame(0x82, std::string(5000, 'b')), 1000) == 1009);
}

// Once the client has read every byte and waits on the socket alone, what arrives next is
// first looked at by tether's own read of whole ordinary messages (transport::take_whole),
// which takes the ordinary ones and leaves everything else to Beast: the refusals must still
// come with the right codes. `later` is sent only after the client has the first message.
namespace {
std::uint16_t code_after_idle(const std::string& later, std::size_t max_message = 1u << 20) {
  return code_after(frame(0x82, "first"), max_message, later);
}
}  // namespace

TEST_CASE("protocol: violations that arrive while the client waits idle get the same codes", "[ws][protocol]") {
  const std::string ok = frame(0x82, "fine");  // an ordinary message before each violation
  CHECK(code_after_idle(ok + frame(0xC1, "hi")) == 1002);
  CHECK(code_after_idle(ok + frame(0x83, "x")) == 1002);
  CHECK(code_after_idle(ok + frame(0x80, "cont")) == 1002);
  CHECK(code_after_idle(ok + frame(0x81, "\xc3\x28")) == 1007);
  CHECK(code_after_idle(ok + std::string("\x81\x82\x01\x02\x03\x04\x69\x6b", 8)) == 1002);
  CHECK(code_after_idle(ok + frame(0x82, std::string(5000, 'b')), 1000) == 1009);
  // A length in more bytes than it needs: 5 in the 16-bit form, 300 in the 64-bit form.
  CHECK(code_after_idle(ok + std::string("\x82\x7e\x00\x05", 4) + "abcde") == 1002);
  CHECK(code_after_idle(ok + std::string("\x82\x7f\x00\x00\x00\x00\x00\x00\x01\x2c", 10) + std::string(300, 'l')) == 1002);
}

// A message whose head the client holds while it waits for the rest is gathered in memory
// (transport::can_top_up) rather than read by Beast: `head` goes behind the message "fine",
// and `rest` only once the client has that message, so the client holds exactly `head` then.
// The refusals keep their codes.
TEST_CASE("protocol: violations whose head arrived before the rest get the same codes", "[ws][protocol]") {
  const std::string ok = frame(0x82, "fine");
  const auto in_two = [&](const std::string& bad, std::size_t cut, std::size_t max_message = 1u << 20) {
    return code_after(frame(0x82, "first"), max_message, ok + bad.substr(0, cut), bad.substr(cut));
  };
  const std::string utf8_bad = frame(0x81, std::string(200, 'a') + "\xc3\x28" + std::string(200, 'z'));
  CHECK(in_two(utf8_bad, 1) == 1007);    // first byte of the header
  CHECK(in_two(utf8_bad, 3) == 1007);    // inside the 16-bit length
  CHECK(in_two(utf8_bad, 100) == 1007);  // before the bad bytes
  CHECK(in_two(utf8_bad, 205) == 1007);  // after them
  CHECK(in_two(frame(0x82, std::string(5000, 'b')), 1, 1000) == 1009);
  CHECK(in_two(frame(0x82, std::string(5000, 'b')), 3, 1000) == 1009);
  CHECK(in_two(std::string("\x81\x82\x01\x02\x03\x04\x69\x6b", 8), 1) == 1002);      // masked
  CHECK(in_two(std::string("\x82\x7e\x00\x05", 4) + "abcde", 2) == 1002);            // 5 in 16 bits
  CHECK(in_two(std::string("\x82\x7f\x00\x00\x00\x00\x00\x00\x01\x2c", 10) + std::string(300, 'l'), 4) == 1002);
}

TEST_CASE("protocol: messages whose head arrived before the rest come whole and in order", "[ws][protocol]") {
  // Each case: a frame cut at `cut`; its head goes behind a marker message, the rest once the
  // client has the marker. A ping and a message may follow in the rest.
  test::ws_server server;
  server.set_raw(frame(0x82, "first"));
  const std::string utf8 = "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80 ";
  std::string text;
  while (text.size() < 3000) text += utf8;
  struct piece {
    ws::message msg;
    std::size_t cut;
    std::string after;  // frames behind it, in the rest
    std::vector<ws::message> then;
  };
  const auto bin = [](std::size_t n, unsigned seed) { return ws::message::binary(test::pattern(n, seed)); };
  const std::vector<piece> cases = {
      {bin(1000, 1), 1, "", {}},
      {bin(1000, 2), 2, "", {}},
      {bin(1000, 3), 4, "", {}},
      {bin(1000, 4), 700, "", {}},
      {bin(100, 5), 1, "", {}},
      {bin(100, 6), 50, frame(0x89, "behind") + frame(0x82, "after the ping"), {ws::message::binary("after the ping")}},
      {ws::message::binary(""), 1, "", {}},
      {ws::message::text(text), 1, "", {}},
      {ws::message::text(text), 3, "", {}},
      {ws::message::text(text), 7, "", {}},  // inside a character
      {bin(32768, 7), 2, "", {}},            // half a read chunk: gathered
      {bin(32768, 8), 20000, "", {}},
      {bin(40000, 9), 3, "", {}},            // more: read straight into its string
      {bin(40000, 10), 30000, "", {}},
      {bin(70000, 11), 5, frame(0x82, "small"), {ws::message::binary("small")}},
      {bin(70000, 12), 60000, "", {}},
      {ws::message::text(std::string(70000, 't')), 5, "", {}},
  };
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto c = co_await client_after_first(server, 1u << 20);
    ws::message m;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto& k = cases[i];
      INFO("case " << i << " cut at " << k.cut);
      const auto f = frame(k.msg.kind == ws::message_kind::text ? 0x81 : 0x82, k.msg.data);
      const auto marker = ws::message::binary("marker " + std::to_string(i));
      server.send_raw_all(frame(0x82, marker.data) + f.substr(0, k.cut));
      m = co_await test::next_of<ws::message>(c);
      CHECK(m == marker);
      server.send_raw_all(f.substr(k.cut) + k.after);
      m = co_await test::next_of<ws::message>(c);
      CHECK((m.kind == k.msg.kind && m.data == k.msg.data));
      for (const auto& t : k.then) {
        m = co_await test::next_of<ws::message>(c);
        CHECK(m == t);
      }
    }
    c.close();
  }());
  CHECK(pong_seen(server, "behind"));
}

TEST_CASE("protocol: messages that arrive while the client waits idle come whole and in order", "[ws][protocol]") {
  // Every kind the direct read takes, and a ping among them (Beast's), in one write, then a
  // message cut in two writes; every message as sent, the ping answered.
  test::ws_server server;
  server.set_raw(frame(0x82, "first"));
  const std::string utf8 = "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80";
  const std::string mid(300, 'm');
  const std::string at_max(1000, 'x');
  std::string later = frame(0x81, utf8) + frame(0x82, "") + frame(0x81, "") + frame(0x82, mid) +
                      frame(0x89, "among") + frame(0x82, "after the ping") + frame(0x82, at_max);
  const std::string cut = frame(0x81, "cut in two writes");
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto c = co_await client_after_first(server, 1000);
    ws::message m;
    server.send_raw_all(later);
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::text(utf8));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary(""));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::text(""));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary(mid));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary("after the ping"));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary(at_max));
    server.send_raw_all(cut.substr(0, 7));
    server.send_raw_all(cut.substr(7));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::text("cut in two writes"));
    c.close();
  }());
  CHECK(pong_seen(server, "among"));
}

TEST_CASE("protocol: large binary messages that arrive while the client waits idle come whole", "[ws][protocol]") {
  // 200 KB and 100 KB are read from the socket straight into the message (transport::begin_large),
  // 2 MB is more than that path allocates at once (Beast's), a large text message is Beast's too;
  // a ping and a small message behind them, in the same write.
  test::ws_server server;
  server.set_raw(frame(0x82, "first"));
  const auto a = test::pattern(200'000, 1), b = test::pattern(100'000, 2), big = test::pattern(2'000'000, 3);
  const std::string t(70'000, 't');
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto c = co_await client_after_first(server, 4u << 20);
    ws::message m;
    server.send_raw_all(frame(0x82, a) + frame(0x82, b) + frame(0x89, "behind") + frame(0x82, "small"));
    m = co_await test::next_of<ws::message>(c);
    CHECK((m.kind == ws::message_kind::binary && m.data == a));
    m = co_await test::next_of<ws::message>(c);
    CHECK((m.kind == ws::message_kind::binary && m.data == b));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary("small"));
    server.send_raw_all(frame(0x82, big) + frame(0x81, t) + frame(0x82, a));
    m = co_await test::next_of<ws::message>(c);
    CHECK((m.kind == ws::message_kind::binary && m.data == big));
    m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::text(t));
    m = co_await test::next_of<ws::message>(c);
    CHECK((m.kind == ws::message_kind::binary && m.data == a));
    c.close();
  }());
  CHECK(pong_seen(server, "behind"));
}

TEST_CASE("protocol: a large message cut off by the peer is an error, never a message", "[ws][protocol]") {
  test::ws_server server;
  server.set_raw(frame(0x82, "first"));
  const auto whole = frame(0x82, test::pattern(300'000, 4));
  asio::io_context ioc;
  ws::disconnected d;
  bool other_message = false;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.reconnect.enabled = false;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    auto m = co_await test::next_of<ws::message>(c);
    CHECK(m == ws::message::binary("first"));
    server.send_raw_all(whole.substr(0, 150'000), true);  // half the message, then the end
    for (;;) {
      auto [ec, ev] = co_await c.async_next_event(test::nothrow);
      if (ec) break;
      if (std::holds_alternative<ws::message>(ev)) other_message = true;
      if (auto* dd = std::get_if<ws::disconnected>(&ev)) {
        d = *dd;
        break;
      }
    }
  }());
  CHECK_FALSE(other_message);
  CHECK(d.error);
}

TEST_CASE("protocol: many messages and pings in one write: all delivered in order, every ping answered", "[ws][protocol]") {
  test::ws_server server;
  std::string raw;
  for (int i = 0; i < 200; ++i) {
    raw += frame(0x81, "m" + std::to_string(i));
    if (i % 50 == 0) raw += frame(0x89, "p" + std::to_string(i));
  }
  server.set_raw(raw);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    for (int i = 0; i < 200; ++i) {
      auto m = co_await test::next_of<ws::message>(c);
      CHECK(m == ws::message::text("m" + std::to_string(i)));
    }
    c.close();
  }());
  std::vector<std::string> pongs;
  server.wait_for([&] {
    pongs.clear();
    for (auto& f : server.raw_frames())
      if (f.opcode == 0xA) pongs.push_back(f.payload);
    return pongs.size() >= 4;
  }, 5s);
  CHECK(pongs == std::vector<std::string>{"p0", "p50", "p100", "p150"});
}

// A large message is framed by tether in pieces (write_coalesce_bytes each) while the reader
// answers the server's pings: every pong must follow the frame whole, never land inside it.
TEST_CASE("protocol: pongs answered while a large message goes out in pieces follow its frame whole", "[ws][protocol]") {
  const auto frame64 = [](unsigned char b0, const std::string& payload) {
    std::string f(1, static_cast<char>(b0));
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((std::uint64_t{payload.size()} >> (8 * i)) & 0xff);
    return f + payload;
  };
  std::string raw;
  for (int i = 0; i < 20; ++i) raw += frame(0x89, "p" + std::to_string(i)) + frame64(0x82, std::string(100'000, static_cast<char>('A' + i)));
  test::ws_server server;
  server.set_raw(raw);
  std::string big(4u << 20, '\0');
  for (std::size_t k = 0; k < big.size(); ++k) big[k] = static_cast<char>((k * 31 + k / 4096) & 0xff);
  asio::io_context ioc;
  test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto o = test::fast_options(server.url());
    o.write_coalesce_bytes = 8192;  // 512 pieces
    o.event_queue_limit = 1;         // the pings are read as the messages are taken
    o.max_message_size = 8u << 20;
    ws::client c(ioc.get_executor(), o);
    c.async_run(asio::detached);
    co_await test::next_of<ws::connected>(c);
    c.async_send_binary(big, asio::detached);
    for (int i = 0; i < 20; ++i) {
      auto m = co_await test::next_of<ws::message>(c);
      CHECK(m.data == std::string(100'000, static_cast<char>('A' + i)));
    }
    co_await c.async_close(test::nothrow);
  }());
  server.wait_for([&] { return !server.close_codes().empty(); }, 10s);
  const auto frames = server.raw_frames();
  std::size_t binaries = 0;
  std::set<std::string> pongs;
  for (const auto& f : frames) {
    CHECK(f.fin);
    CHECK(f.masked);
    if (f.opcode == 0x2) {
      ++binaries;
      CHECK(f.payload == big);
    } else if (f.opcode == 0xA) {
      pongs.insert(f.payload);
    } else {
      CHECK(f.opcode == 0x8);
    }
  }
  CHECK(binaries == 1);
  CHECK(pongs.size() == 20);
  CHECK(server.close_codes() == std::vector<std::uint16_t>{1000});
}
