// tether/ws/detail/transport.hpp: the byte stream under Beast's websocket::stream: plain TCP or
// TLS chosen at run time (so Beast's stream is instantiated once), socket reads in large chunks,
// and, while "corked", writes gathered in memory and sent by one flush.
//
// Why: Beast writes every frame with its own socket write and reads through a 1.5 KiB buffer.
// With many small messages in flight that costs a system call per frame; gathering the frames
// queued at one moment into one write and reading 64 KiB at a time removes most of them.
#pragma once

#include <tether/net/error.hpp>
#include <tether/ws/detail/key_rewriter.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

namespace tether::ws::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class transport {
 public:
  using executor_type = asio::any_io_executor;
  using clock = std::chrono::steady_clock;

  transport(const executor_type& ex, asio::ssl::context* tls, std::size_t read_chunk)
      : ex_(ex), sock_(ex), read_chunk_(read_chunk < 1024 ? 1024 : read_chunk) {
    if (tls) tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, *tls);
  }

  executor_type get_executor() noexcept { return ex_; }
  tcp::socket& socket() noexcept { return sock_; }
  asio::ssl::stream<tcp::socket&>* tls() noexcept { return tls_.get(); }

  /// When the last bytes arrived from the peer.
  clock::time_point last_rx() const noexcept { return last_rx_; }
  /// Unread bytes already received (for dead-peer detection while the reader is paused).
  std::size_t buffered() const noexcept { return rbuf_.size(); }

  /// While corked, writes are gathered; `flush` sends them in one write.
  void cork() noexcept { corked_ = true; }
  void flush(asio::any_completion_handler<void(error_code)> h);

  /// Closes the socket: every pending operation completes with an error.
  void close() noexcept {
    error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_both, ignored);
    sock_.close(ignored);
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return asio::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto h, const MutableBuffers& b) { this->start_read(b, std::move(h)); }, handler, buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return asio::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto h, const ConstBuffers& b) { this->start_write(b, std::move(h)); }, handler, buffers);
  }

  /// Beast's teardown customisation points (found by ADL).
  friend void teardown(boost::beast::role_type, transport& t, error_code& ec) {
    t.close();
    ec = {};
  }
  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type, transport& t, TeardownHandler&& handler) {
    t.start_teardown(asio::any_completion_handler<void(error_code)>(
        std::forward<TeardownHandler>(handler)));
  }
  friend void beast_close_socket(transport& t) { t.close(); }

 private:
  template <class B, class H>
  void raw_read(const B& b, H&& h) {
    if (tls_)
      tls_->async_read_some(b, std::forward<H>(h));
    else
      sock_.async_read_some(b, std::forward<H>(h));
  }

  // While the handshake response is arriving, gather its whole header block first so that
  // the key rewriter can fix its Accept value before Beast parses it.
  bool response_header_ready() {
    const auto d = rbuf_.cdata();
    std::string block(static_cast<const char*>(d.data()), d.size());
    if (!rw_.incoming_header(block)) return rbuf_.size() >= 65536;  // Beast reports the overflow
    std::memcpy(rbuf_.data().data(), block.data(), block.size());
    return true;
  }

  template <class B, class H>
  void start_read(const B& b, H&& h) {
    if (rw_.awaiting_accept() && !response_header_ready()) {
      raw_read(rbuf_.prepare(read_chunk_), [this, b, h = std::forward<H>(h)](error_code ec, std::size_t got) mutable {
        rbuf_.commit(got);
        if (got > 0) last_rx_ = clock::now();
        if (!ec) return start_read(b, std::move(h));
        if (rbuf_.size() == 0) return std::move(h)(ec, std::size_t{0});
        const auto n = asio::buffer_copy(b, rbuf_.data());
        rbuf_.consume(n);
        std::move(h)(error_code{}, n);
      });
      return;
    }
    const auto want = asio::buffer_size(b);
    if (rbuf_.size() > 0 || want == 0) {
      const auto n = asio::buffer_copy(b, rbuf_.data());
      rbuf_.consume(n);
      asio::post(ex_, [h = std::forward<H>(h), n]() mutable { std::move(h)(error_code{}, n); });
      return;
    }
    if (want >= read_chunk_) {
      // Large reads (message payloads) go straight into the caller's buffer.
      raw_read(b, [this, h = std::forward<H>(h)](error_code ec, std::size_t n) mutable {
        if (n > 0) last_rx_ = clock::now();
        std::move(h)(ec, n);
      });
      return;
    }
    raw_read(rbuf_.prepare(read_chunk_),
             [this, b, h = std::forward<H>(h)](error_code ec, std::size_t got) mutable {
               rbuf_.commit(got);
               if (got > 0) last_rx_ = clock::now();
               if (ec && rbuf_.size() == 0) return std::move(h)(ec, std::size_t{0});
               const auto n = asio::buffer_copy(b, rbuf_.data());
               rbuf_.consume(n);
               std::move(h)(error_code{}, n);
             });
  }

  // Every byte Beast writes is copied once and passed through the key rewriter; then either
  // gathered (corked, or a flush is running) or written whole right away.
  template <class B, class H>
  void start_write(const B& b, H&& h) {
    const auto n = asio::buffer_size(b);
    auto& dst = (corked_ || flushing_) ? pending_ : direct_;
    const auto old = dst.size();
    dst.resize(old + n);
    asio::buffer_copy(asio::buffer(dst.data() + old, n), b);
    rw_.outgoing(dst.data() + old, n);
    if (&dst == &pending_) {
      asio::post(ex_, [h = std::forward<H>(h), n]() mutable { std::move(h)(error_code{}, n); });
      return;
    }
    auto done = [this, h = std::forward<H>(h)](error_code ec, std::size_t written) mutable {
      direct_.clear();
      std::move(h)(ec, written);
    };
    if (tls_)
      asio::async_write(*tls_, asio::buffer(direct_), std::move(done));
    else
      asio::async_write(sock_, asio::buffer(direct_), std::move(done));
  }

  void flush_loop(asio::any_completion_handler<void(error_code)> h);
  void start_teardown(asio::any_completion_handler<void(error_code)> h);

  executor_type ex_;
  tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  std::size_t read_chunk_;
  boost::beast::flat_buffer rbuf_;
  std::vector<char> pending_, inflight_, direct_;
  key_rewriter rw_;
  bool corked_ = false;
  bool flushing_ = false;
  clock::time_point last_rx_ = clock::now();
  char drain_[512];
};

}  // namespace tether::ws::detail
