// tether/transfer/detail/connection_pool.hpp: the manager's idle HTTP/1.1 connections, kept
// for the next request to the same origin (tus's HEAD and PATCHes, a download's segments,
// successive transfers to one host), and the last TLS session per origin for resumption. The
// choice of what to keep is idle_pool's; this holds the sockets. Manager thread only. Private
// to the compiled part (it includes Beast and OpenSSL).
#pragma once

#include <tether/transfer/detail/idle_pool.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <openssl/ssl.h>
#include <poll.h>

#include <map>
#include <memory>
#include <optional>

namespace tether::transfer::detail {

namespace asio = boost::asio;

/// One connection: a TCP stream, with TLS over it for https.
struct pooled_connection {
  explicit pooled_connection(asio::io_context& ioc) : plain(ioc) {}
  boost::beast::tcp_stream plain;  ///< moved into `tls` when there is TLS
  std::optional<asio::ssl::stream<boost::beast::tcp_stream>> tls;
  boost::beast::tcp_stream& lowest() noexcept { return tls ? tls->next_layer() : plain; }
};

class connection_pool {
 public:
  explicit connection_pool(idle_limits limits) : idle_(limits) {}
  ~connection_pool() { close_all(); }
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// Closes every idle connection (what runs on their sockets, such as an https proxy's relay,
  /// ends with them).
  void close_all() { drop(idle_.clear()); }

  /// An idle connection to `origin` that the server has not closed meanwhile, if any.
  std::unique_ptr<pooled_connection> take(const std::string& origin) {
    for (;;) {
      std::vector<std::unique_ptr<pooled_connection>> expired;
      auto got = idle_.take(origin, steady_now(), expired);
      drop(std::move(expired));
      if (!got) return nullptr;
      if (still_open(**got)) return std::move(*got);
      drop_one(std::move(*got));
    }
  }

  /// Keeps `c` (whose last response was read to its end, with keep-alive) for `origin`.
  void put(const std::string& origin, std::unique_ptr<pooled_connection> c) {
    drop(idle_.put(origin, std::move(c), steady_now()));
  }

  /// The TLS session to offer for `origin` (null: none).
  SSL_SESSION* session(const std::string& origin) const {
    auto it = sessions_.find(origin);
    return it == sessions_.end() || !SSL_SESSION_is_resumable(it->second.get()) ? nullptr : it->second.get();
  }
  /// Remembers the connection's session for `origin` when the server allows resuming it. A
  /// copy: OpenSSL marks a session unusable when a connection using it ends without a TLS
  /// close, as a dropped connection (or one this pool lets go) does.
  void remember(const std::string& origin, SSL* ssl) {
    SSL_SESSION* live = SSL_get0_session(ssl);
    if (!live || !SSL_SESSION_is_resumable(live)) return;
    SSL_SESSION* s = SSL_SESSION_dup(live);
    if (!s) return;
    if (sessions_.size() >= 64 && !sessions_.count(origin)) sessions_.erase(sessions_.begin());  // bounded
    sessions_[origin].reset(s);
  }
  /// Forgets `origin`'s session (its handshake failed).
  void forget(const std::string& origin) { sessions_.erase(origin); }

 private:
  struct session_free {
    void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
  };
  static std::chrono::steady_clock::time_point steady_now() { return std::chrono::steady_clock::now(); }
  /// An idle connection has nothing to read: anything readable is the server's close (or
  /// bytes nobody asked for), and the connection is no longer usable.
  static bool still_open(pooled_connection& c) {
    auto& sock = c.lowest().socket();
    if (!sock.is_open()) return false;
    pollfd p{sock.native_handle(), POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  static void drop_one(std::unique_ptr<pooled_connection> c) {
    boost::system::error_code ig;
    c->lowest().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ig);
    c->lowest().socket().close(ig);
  }
  static void drop(std::vector<std::unique_ptr<pooled_connection>> cs) {
    for (auto& c : cs) drop_one(std::move(c));
  }

  idle_pool<std::unique_ptr<pooled_connection>> idle_;
  std::map<std::string, std::unique_ptr<SSL_SESSION, session_free>> sessions_;
};

}  // namespace tether::transfer::detail
