#pragma once

#include <tether/ws/detail/frame_header.hpp>
#include <tether/ws/detail/transport.hpp>

#include <boost/beast/websocket/detail/utf8_checker.hpp>

namespace tether::ws::detail {

void transport::flush(asio::any_completion_handler<void(error_code)> h, bool whole_records) {
  corked_ = false;
  // What the next write takes (extent); less than a record goes whole: none to fill first.
  const bool hold = whole_records && tls_ && pending_.size() >= tls_record_bytes;
  when_sent(hold ? appended_ - pending_.size() + extent() : appended_, std::move(h));
}

void transport::when_sent(std::uint64_t upto, asio::any_completion_handler<void(error_code)> h) {
  if (write_error_ || sent_ >= upto) {
    asio::post(ex_, [h = std::move(h), ec = write_error_]() mutable { std::move(h)(ec); });
    return;
  }
  must_send_ = std::max(must_send_, upto);
  waiters_.push_back(flush_waiter{upto, std::move(h)});  // positions only grow: in order
  kick();
}

void transport::append_close(std::uint16_t code, std::string_view reason) {
  // A control frame's payload is at most 125 bytes: the code and up to 123 bytes of reason.
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xffu));
  payload.append(reason.substr(0, 123));
  append_masked(0x8u, payload.data(), payload.size());
  owe_all();
  close_sent_ = true;
  kick();
}

void transport::append_masked(unsigned opcode, const char* data, std::size_t n) {
  append_header(opcode, n);
  append_payload(data, n);
}

void transport::begin_frame(bool binary, std::size_t n) { append_header(binary ? 0x2u : 0x1u, n); }

void transport::append_payload(const char* data, std::size_t k) {
  k = static_cast<std::size_t>(std::min<std::uint64_t>(k, own_left_));
  const auto old = pending_.size();
  pending_.resize(old + k);
  mask_copy(reinterpret_cast<unsigned char*>(pending_.data() + old), reinterpret_cast<const unsigned char*>(data), k,
            own_key_, static_cast<std::size_t>(own_phase_ % 4));
  appended_ += k;
  own_phase_ += k;
  own_left_ -= k;
  if (own_left_ == 0 && !deferred_.empty()) {
    // The frame is whole: what Beast wrote meanwhile follows it.
    pending_.insert(pending_.end(), deferred_.begin(), deferred_.end());
    appended_ += deferred_.size();
    owe_all();
    deferred_.clear();
  }
  kick();
}

// Appends a masked frame's header with a fresh key and opens the frame for its payload.
void transport::append_header(unsigned opcode, std::size_t n) {
  unsigned char hdr[14];
  std::size_t h = 0;
  hdr[h++] = static_cast<unsigned char>(0x80u | opcode);
  h += put_length(hdr + h, n, 0x80u);
  const std::uint32_t key = rw_.fresh_mask();
  std::memcpy(hdr + h, &key, 4);
  std::memcpy(own_key_, &key, 4);
  h += 4;
  pending_.insert(pending_.end(), reinterpret_cast<const char*>(hdr), reinterpret_cast<const char*>(hdr) + h);
  appended_ += h;
  own_left_ = n;
  own_phase_ = 0;
}

void transport::write_pending() {
  writing_ = true;
  const auto take = extent();
  inflight_.swap(pending_);
  pending_.clear();
  if (take < inflight_.size()) {
    // Whole records go; the bytes beyond wait for the next frames (write_extent).
    pending_.insert(pending_.end(), inflight_.begin() + static_cast<std::ptrdiff_t>(take), inflight_.end());
    inflight_.resize(take);
  }
  if (parked_) {
    // The parked write's bytes are on their way: let Beast go on.
    asio::post(ex_, [h = std::move(*parked_), n = parked_n_]() mutable { std::move(h)(error_code{}, n); });
    parked_.reset();
  }
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(inflight_), [this](error_code ec, std::size_t n) { written(ec, n); });
    return;
  }
  // Plain TCP: most writes fit in the socket's send buffer. Send at once, without an
  // asynchronous operation and the turn of the event loop its completion takes; only what
  // the socket did not take goes through an asynchronous write.
  error_code ec;
  const std::size_t n = send_now(ec);
  if (ec || n == inflight_.size()) return written(ec, n);
  asio::async_write(sock_, asio::buffer(inflight_.data() + n, inflight_.size() - n),
                    [this, n](error_code e, std::size_t m) { written(e, n + m); });
}

std::size_t transport::send_now(error_code& ec) {
#if defined(MSG_DONTWAIT) && defined(MSG_NOSIGNAL)
  // One send(2) that does not wait, without first switching the socket's mode (an ioctl per
  // connection). Interrupted or full: nothing taken, the asynchronous write sends it.
  const auto r = ::send(sock_.native_handle(), inflight_.data(), inflight_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (r >= 0) return static_cast<std::size_t>(r);
  const int e = errno;
  if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) ec.assign(e, asio::error::get_system_category());
  return 0;
#else
  if (!non_blocking_) {
    sock_.non_blocking(true, ec);
    non_blocking_ = !ec;
    if (ec) {
      ec = {};
      return 0;
    }
  }
  const std::size_t n = sock_.write_some(asio::buffer(inflight_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  return n;
#endif
}

bool transport::take_whole(std::string& out, bool& text, std::uint64_t max) {
  if (!beast_idle_) return false;
  const auto d = rbuf_.cdata();
  const auto* p = static_cast<const unsigned char*>(d.data());
  const auto f = ordinary_frame_at(p, d.size(), max);
  if (!f.ok || !f.whole) return false;
  const auto* payload = static_cast<const char*>(d.data()) + f.header;
  if (f.text && !boost::beast::websocket::detail::check_utf8(payload, f.payload)) return false;
  out.assign(payload, f.payload);
  text = f.text;
  rbuf_.consume(f.header + f.payload);
  counter_.take();
  return true;
}

bool transport::begin_large(std::string& out, std::uint64_t max) {
  if (!beast_idle_ || read_error_) return false;
  const auto d = rbuf_.cdata();
  const auto f = ordinary_frame_at(static_cast<const unsigned char*>(d.data()), d.size(), max);
  if (!f.ok || f.whole || f.text || !large_bounds{read_chunk_}.direct(f.payload)) return false;
  const auto have = d.size() - f.header;
  // What is in memory copied, only the rest zero-filled (then read over).
  spare_.give(out, f.payload);
  out.reserve(f.payload);
  out.assign(static_cast<const char*>(d.data()) + f.header, have);
  out.resize(f.payload);
  rbuf_.consume(d.size());
  large_left_ = f.payload - have;
  return true;
}

void transport::written(error_code ec, std::size_t n) {
  writing_ = false;
  inflight_.clear();
  sent_ += n;
  if (ec) {
    write_error_ = ec;
    pending_.clear();
    if (parked_) {
      asio::post(ex_, [h = std::move(*parked_), ec]() mutable { std::move(h)(ec, std::size_t{0}); });
      parked_.reset();
    }
  }
  while (!waiters_.empty() && (ec || waiters_.front().upto <= sent_)) {
    asio::post(ex_, [h = std::move(waiters_.front().h), ec]() mutable { std::move(h)(ec); });
    waiters_.pop_front();
  }
  if (ec) {
    if (close_when_drained_) close();
    return;
  }
  kick();
  if (close_when_drained_ && !writing_) close();
}

void transport::close_when_drained() {
  close_when_drained_ = true;
  owe_all();
  kick();
  if (!writing_) close();
}

void transport::start_teardown(asio::any_completion_handler<void(error_code)> h) {
  // The close frame may still be waiting in memory: send it before anything else.
  if (sent_ != appended_ && !write_error_) {
    flush([this, h = std::move(h)](error_code) mutable { start_teardown(std::move(h)); });
    return;
  }
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
