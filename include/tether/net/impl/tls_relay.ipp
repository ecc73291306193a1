// tether/net/impl/tls_relay.ipp: the relay between a connection and an https:// proxy.
#pragma once

#include <tether/net/detail/tls_context.hpp>
#include <tether/net/detail/tls_relay.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace tether::net::detail {

namespace asio = boost::asio;

// Everything the relay owns; every operation and handler runs on the strand it is made with.
struct tls_relay {
  tls_relay(asio::ssl::context& ctx, const asio::strand<asio::any_io_executor>& s)
      : real(s), tls(real, ctx), local(s), timer(s) {}

  asio::ip::tcp::socket real;                  // to the proxy
  asio::ssl::stream<asio::ip::tcp::socket&> tls;
  asio::local::stream_protocol::socket local;  // the relay's end of the pair
  asio::steady_timer timer;                    // bounds the handshake
  bool ready = false;                          // the handshake succeeded
  bool timed_out = false;
  bool ended = false;

  // The first end of either side ends both.
  void end() {
    if (ended) return;
    ended = true;
    error_code ig;
    real.shutdown(asio::socket_base::shutdown_both, ig);
    real.close(ig);
    local.close(ig);
    timer.cancel();
  }
};

inline asio::awaitable<error_code> relay_handshake(std::shared_ptr<tls_relay> r,
                                                   std::chrono::steady_clock::duration timeout) {
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  r->timer.expires_after(timeout);
  r->timer.async_wait([r](error_code ec) {
    if (ec || r->ready) return;
    r->timed_out = true;
    r->end();
  });
  // The connection writes nothing while it waits for the handshake: its end becoming
  // readable means it was closed (a watchdog, a cancelled transfer).
  r->local.async_wait(asio::socket_base::wait_read, [r](error_code ec) {
    if (!ec && !r->ready) r->end();
  });
  auto [hec] = co_await r->tls.async_handshake(asio::ssl::stream_base::client, nothrow);
  if (r->timed_out) co_return make_error_code(error::connect_timeout);
  if (hec || r->ended) {
    const error_code why = hec ? explain_handshake_failure(r->tls.native_handle(), hec)
                               : make_error_code(asio::error::operation_aborted);
    r->end();
    co_return why;
  }
  r->ready = true;
  r->timer.cancel();
  error_code ig;
  r->local.cancel(ig);
  co_return error_code{};
}

// Copies `from` to `to` until either fails: true when reading `from` ended (everything read
// was written), false when writing `to` failed.
template <class From, class To>
asio::awaitable<bool> relay_copy(From& from, To& to) {
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  std::vector<char> buf(tls_relay_chunk);
  for (;;) {
    auto space = asio::buffer(buf);
    auto [ec, n] = co_await from.async_read_some(space, nothrow);
    if (n > 0) {
      auto data = asio::buffer(buf.data(), n);
      auto [wec, wn] = co_await asio::async_write(to, data, nothrow);
      if (wec) co_return false;
    }
    if (ec) co_return true;
  }
}

// The connection's bytes to the proxy. When the connection closes its end (or the proxy
// fails), both sides end.
inline asio::awaitable<void> relay_to_proxy(std::shared_ptr<tls_relay> r) {
  co_await relay_copy(r->local, r->tls);
  r->end();
}

// The proxy's bytes to the connection. When the proxy's stream ends, the connection reads
// the end of the stream after the last byte (its end of the pair stays open until it closes
// it, which then ends relay_to_proxy); if the connection has gone, both sides end.
inline asio::awaitable<void> relay_from_proxy(std::shared_ptr<tls_relay> r) {
  if (!co_await relay_copy(r->tls, r->local)) {
    r->end();
    co_return;
  }
  error_code ig;
  r->local.shutdown(asio::socket_base::shutdown_send, ig);
}

asio::awaitable<error_code> start_tls_relay(asio::ip::tcp::socket& s, asio::ssl::context& ctx,
                                            const proxy_config& proxy, const tls_options& tls,
                                            std::chrono::steady_clock::duration timeout) {
  constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    const error_code ec(errno, boost::system::system_category());
    error_code ig;
    s.close(ig);
    co_return ec;
  }
  auto strand = asio::make_strand(s.get_executor());
  auto r = std::make_shared<tls_relay>(ctx, strand);
  // The connected socket's descriptor goes to the relay; `s` gets the pair's end.
  error_code eec;
  const auto protocol = s.local_endpoint(eec).protocol();
  error_code rec;
  const auto to_proxy = s.release(rec);
  if (!rec) {
    r->real.assign(eec ? asio::ip::tcp::v4() : protocol, to_proxy, rec);
    if (rec) ::close(to_proxy);
  }
  error_code aec;
  r->local.assign(asio::local::stream_protocol(), fds[1], aec);
  if (aec) ::close(fds[1]);
  error_code sec;
  s.assign(asio::ip::tcp::v4(), fds[0], sec);  // options of TCP's level fail on it, harmlessly
  if (sec) ::close(fds[0]);
  if (rec || aec || sec) {
    r->end();
    error_code ig;
    s.close(ig);
    co_return rec ? rec : aec ? aec : sec;
  }
  // The proxy's name, never the server's: SNI and verification, no pins.
  tls_options for_proxy = tls;
  for_proxy.server_name.clear();
  for_proxy.pinned_public_keys.clear();
  if (auto pec = prepare_client_stream(r->tls.native_handle(), proxy.host, for_proxy)) {
    r->end();
    co_return pec;
  }
  auto handshake = relay_handshake(r, timeout);
  auto [ex, hec] = co_await asio::co_spawn(strand, std::move(handshake), nothrow);
  if (ex || hec) {
    error_code ig;
    s.close(ig);
    co_return ex ? make_error_code(asio::error::operation_aborted) : hec;
  }
  asio::co_spawn(strand, relay_to_proxy(r), asio::detached);
  asio::co_spawn(strand, relay_from_proxy(r), asio::detached);
  co_return error_code{};
}

}  // namespace tether::net::detail
