#pragma once

#include <tether/ws/detail/transport.hpp>

namespace tether::ws::detail {

void transport::flush(asio::any_completion_handler<void(error_code)> h) {
  corked_ = false;
  if (pending_.empty()) {
    asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(error_code{}); });
    return;
  }
  flushing_ = true;
  flush_loop(std::move(h));
}

void transport::flush_loop(asio::any_completion_handler<void(error_code)> h) {
  inflight_.swap(pending_);
  pending_.clear();
  auto done = [this, h = std::move(h)](error_code ec, std::size_t) mutable {
    inflight_.clear();
    // Frames Beast wrote meanwhile (pongs, a close) were gathered: send them too, in order.
    if (!ec && !pending_.empty()) return flush_loop(std::move(h));
    flushing_ = false;
    std::move(h)(ec);
  };
  if (tls_)
    asio::async_write(*tls_, asio::buffer(inflight_), std::move(done));
  else
    asio::async_write(sock_, asio::buffer(inflight_), std::move(done));
}

void transport::start_teardown(asio::any_completion_handler<void(error_code)> h) {
  if (tls_) {
    // close_notify, then the socket. The client's close watchdog bounds the wait.
    tls_->async_shutdown([this, h = std::move(h)](error_code) mutable {
      close();
      std::move(h)(error_code{});
    });
    return;
  }
  // RFC 6455 §7.1.1: the server should close TCP first; half-close and wait for its FIN.
  error_code ignored;
  sock_.shutdown(tcp::socket::shutdown_send, ignored);
  struct drain_op {
    transport* self;
    asio::any_completion_handler<void(error_code)> h;
    void operator()(error_code ec, std::size_t) {
      if (!ec) return self->sock_.async_read_some(asio::buffer(self->drain_), std::move(*this));
      self->close();
      std::move(h)(error_code{});
    }
  };
  sock_.async_read_some(asio::buffer(drain_), drain_op{this, std::move(h)});
}

}  // namespace tether::ws::detail
