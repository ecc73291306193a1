// Helpers for ws::client tests: pull events of a wanted kind with a bound.
#pragma once

#include <tether/ws.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <variant>
#include <vector>

namespace tether::test {

constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Options for a loopback test: fast timeouts, deterministic jitter, quick reconnects.
inline ws::options fast_options(std::string url) {
  ws::options o;
  o.url = std::move(url);
  o.connect_timeout = std::chrono::seconds(5);
  o.handshake_timeout = std::chrono::seconds(5);
  o.close_timeout = std::chrono::seconds(2);
  o.reconnect.seed = 1234;
  o.reconnect.backoff.initial = std::chrono::milliseconds(20);
  o.reconnect.backoff.max = std::chrono::milliseconds(200);
  o.reconnect.backoff.min = std::chrono::milliseconds(5);
  return o;
}

/// Pulls events until one of type T arrives; events of other types are passed to `seen`.
template <class T, class Seen>
boost::asio::awaitable<T> next_of(ws::client& c, Seen&& seen) {
  for (;;) {
    std::tuple<error_code, ws::event> r = co_await c.async_next_event(nothrow);
    if (std::get<0>(r)) throw boost::system::system_error(std::get<0>(r), "next_event");
    if (auto* p = std::get_if<T>(&std::get<1>(r))) {
      T out(std::move(*p));
      co_return out;
    }
    seen(std::get<1>(r));
  }
}
template <class T>
boost::asio::awaitable<T> next_of(ws::client& c) {
  return next_of<T>(c, [](const ws::event&) {});
}

/// One session without reconnects: connect, send `text`, read the echo into `echoed`, close.
/// Returns how the session ended (empty when the echo came back and the close was clean).
inline error_code echo_once(ws::options o, const std::string& text, std::string* echoed = nullptr) {
  boost::asio::io_context ioc;
  error_code result;
  o.reconnect.enabled = false;
  run_bounded(ioc, [&]() -> boost::asio::awaitable<void> {
    ws::client c(ioc.get_executor(), o);
    c.async_run([&](error_code ec) { result = ec; });
    auto [ec, ev] = co_await c.async_next_event(nothrow);
    if (std::holds_alternative<ws::connected>(ev)) {
      co_await c.async_send_text(text, nothrow);
      auto m = co_await next_of<ws::message>(c);
      if (echoed) *echoed = m.data;
      co_await c.async_close(nothrow);
    } else if (auto* d = std::get_if<ws::disconnected>(&ev)) {
      result = d->error;
    }
  }());
  return result;
}

/// `n` bytes of a pattern that differs with `seed` and repeats only every 256,000 bytes.
inline std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t k = 0; k < n; ++k) s[k] = static_cast<char>((k * 131 + k / 1000 + seed) & 0xff);
  return s;
}

/// Messages of every size the reader treats apart, three of each in a row, binary and text,
/// distinct bytes in each: whole in one read, over half a read chunk (read straight into their
/// own string), the largest such, and larger (Beast's).
inline std::vector<ws::message> messages_of_every_size() {
  std::vector<ws::message> out;
  for (std::size_t n : {16u, 1000u, 40'000u, 100'000u, 300'000u, 1u << 20, 2'500'000u}) {
    for (unsigned copy = 0; copy < 3; ++copy) out.push_back(ws::message::binary(pattern(n, static_cast<unsigned>(n) + copy)));
  }
  for (char c : {'a', 'b', 'c'}) out.push_back(ws::message::text(std::string(70'000, c)));
  return out;
}

/// What echo_all saw: the messages that came back, and how each send completed, in the
/// order they completed.
struct echo_result {
  std::vector<ws::message> got;
  std::vector<error_code> sends;
};

/// Sends `msgs` to an echo server, `window` of them in flight (the next one sent as each
/// comes back), until as many messages came back or the connection ended; then waits for
/// every send made to complete (bounded by run_bounded). With several large ones in flight
/// the reader reads while the writer writes, and a message comes back while one of its size
/// was just sent.
inline echo_result echo_all(ws::options o, const std::vector<ws::message>& msgs, std::size_t window) {
  boost::asio::io_context ioc;
  echo_result out;
  o.reconnect.enabled = false;
  run_bounded(ioc, [&]() -> boost::asio::awaitable<void> {
    ws::client c(ioc.get_executor(), o);
    c.async_run(boost::asio::detached);
    co_await next_of<ws::connected>(c);
    boost::asio::steady_timer completed(ioc, boost::asio::steady_timer::time_point::max());
    const auto send = [&](const ws::message& m) {
      c.async_send(m, [&](error_code ec) {
        out.sends.push_back(ec);
        completed.cancel();
      });
    };
    std::size_t next = 0;
    for (; next < msgs.size() && next < window; ++next) send(msgs[next]);
    while (out.got.size() < msgs.size()) {
      auto [ec, ev] = co_await c.async_next_event(nothrow);
      if (ec || std::holds_alternative<ws::disconnected>(ev)) break;
      auto* m = std::get_if<ws::message>(&ev);
      if (!m) continue;
      out.got.push_back(std::move(*m));
      if (next < msgs.size()) send(msgs[next++]);
    }
    while (out.sends.size() < next) co_await completed.async_wait(nothrow);
    co_await c.async_close(nothrow);
  }());
  return out;
}

/// echo_all's messages came back as sent, in order, and every send completed without error.
inline void check_echoed(const std::vector<ws::message>& sent, const echo_result& e) {
  REQUIRE(e.got.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    INFO("message " << i << " of " << sent[i].data.size() << " bytes");
    CHECK(e.got[i].kind == sent[i].kind);
    CHECK(e.got[i].data.size() == sent[i].data.size());
    CHECK((e.got[i].data == sent[i].data));
  }
  CHECK(e.sends.size() == sent.size());
  for (const auto& ec : e.sends) CHECK(!ec);
}

/// messages_of_every_size through echo_all, 3 in flight: every one comes back as sent, in order.
inline void check_every_size_echoed(const ws::options& o) {
  const auto sent = messages_of_every_size();
  check_echoed(sent, echo_all(o, sent, 3));
}

}  // namespace tether::test
