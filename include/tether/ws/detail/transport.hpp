// tether/ws/detail/transport.hpp: the byte stream under Beast's websocket::stream: plain TCP or
// TLS chosen at run time (so Beast's stream is instantiated once), socket reads in large chunks
// (with a count of the whole messages they hold), and writes gathered in memory and sent by one
// socket write at a time.
//
// Why: Beast writes every frame with its own socket write and reads through a 1.5 KiB buffer.
// With many small messages in flight that costs a system call per frame; gathering the frames
// written meanwhile into the next write and reading 64 KiB at a time removes most of them, and
// messages already in memory can be read synchronously, without an operation per message.
#pragma once

#include <tether/net/error.hpp>
#include <tether/ws/detail/frame_counter.hpp>
#include <tether/ws/detail/key_rewriter.hpp>
#include <tether/ws/detail/spare_string.hpp>
#include <tether/ws/detail/tls_records.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <cstring>
#include <string>
#include <string_view>
#include <memory>
#include <vector>

namespace tether::ws::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class transport {
 public:
  using executor_type = asio::any_io_executor;
  using clock = std::chrono::steady_clock;

  transport(const executor_type& ex, asio::ssl::context* tls, std::size_t read_chunk, std::size_t write_chunk)
      : ex_(ex),
        sock_(ex),
        read_chunk_(read_chunk < 1024 ? 1024 : read_chunk),
        high_water_(write_chunk < 8192 ? 8192 : write_chunk),
        spare_(large_bounds{read_chunk_}) {
    if (tls) tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, *tls);
  }

  executor_type get_executor() noexcept { return ex_; }
  tcp::socket& socket() noexcept { return sock_; }
  asio::ssl::stream<tcp::socket&>* tls() noexcept { return tls_.get(); }

  /// When the last bytes arrived from the peer.
  clock::time_point last_rx() const noexcept { return last_rx_; }
  /// Bytes received that wait for the reader (for dead-peer detection while the reader is
  /// paused). None while it waits for the peer's next bytes (fill), even when it holds the
  /// head of a message then: that wait is for the peer, whose silence means what it means.
  std::size_t unread() const noexcept { return filling_ ? 0 : rbuf_.size(); }
  /// Whole messages received and not yet read (see frame_counter).
  frame_counter& messages() noexcept { return counter_; }
  /// Plain TCP: the last socket read took less than it asked for, so the socket had nothing
  /// more then and reading again at once would most likely find nothing.
  bool drained() const noexcept { return drained_; }

  /// Whether waiting for the peer's next bytes with `fill` can neither skip nor delay anything:
  /// nothing is in memory here and nothing that arrived waits to be acted on (frame_counter::quiet).
  /// Over TLS too: a read then takes what one record holds, and a large message read straight
  /// into its own string no longer costs an allocation of its size per message when large
  /// messages go both ways (see spare_string, without which glibc's heap made this path a
  /// third slower at 1 MiB / 4 over TLS).
  bool can_fill() const noexcept { return rbuf_.size() == 0 && !read_error_ && counter_.quiet(); }
  /// Whether what is in memory is only the head of an ordinary message that is still arriving
  /// (ordinary_head_arriving, at most `max`), nothing else waiting to be acted on
  /// (frame_counter::arriving) and Beast holding none of the stream: the reader then waits for
  /// the rest with `fill` too, and takes the message whole. Over TLS a record rarely ends where
  /// a message does, so without this every record's last message went through Beast's read.
  bool can_top_up(std::uint64_t max) const noexcept {
    if (!beast_idle_ || read_error_ || rbuf_.size() == 0 || !counter_.arriving()) return false;
    const auto d = rbuf_.cdata();
    return ordinary_head_arriving(static_cast<const unsigned char*>(d.data()), d.size(), max, read_chunk_);
  }
  /// Waits for the peer's next bytes: one socket read into memory (as much as has arrived, up
  /// to the read chunk), counted and stamped, and completes with its error, which the reads
  /// that follow report once the bytes before it are consumed. The reader waits this way
  /// while it is idle (can_fill), then reads a message that has wholly arrived synchronously
  /// and leaves anything else (part of a message, a control frame) to Beast's asynchronous
  /// read: what it saves is that read's composed operations per message (their work guards and
  /// executor copies).
  template <class Handler>
  void fill(Handler&& h) {
    filling_ = true;
    raw_read(rbuf_.prepare(read_chunk_), [this, h = std::forward<Handler>(h)](error_code ec, std::size_t got) mutable {
      filling_ = false;
      received_chunk(got, ec);
      if (ec) read_error_ = ec;
      beast_idle_ = true;
      std::move(h)(ec);
    });
  }

  /// Takes the next message out of memory without Beast, into `out`, when it is an ordinary
  /// one that has wholly arrived (ordinary_frame_at; a text one also valid UTF-8): its payload
  /// is copied once, from the bytes read to the application's string, where Beast's read would
  /// copy it into its own buffer, then into the message buffer, before that copy. Only while
  /// Beast holds none of the stream: from a fill (which starts where every byte that arrived
  /// was read, see can_fill) until Beast next reads. False leaves everything to Beast.
  bool take_whole(std::string& out, bool& text, std::uint64_t max);

  /// The same for a large ordinary binary message of which only the head has arrived (more
  /// than half a read chunk of payload, at most 16 read chunks: what the head announces is
  /// allocated at once, so a larger one is left to Beast's buffer, which grows as bytes come):
  /// `out` is sized to its payload and gets what is in memory; read_large reads the rest from
  /// the socket straight into it (and what follows the frame into memory), so Beast still
  /// holds none of the stream afterwards. Not after a failure a fill met (Beast's read reports
  /// it). `out` gets the memory of a large message sent before when it fits (spare_string).
  bool begin_large(std::string& out, std::uint64_t max);
  /// Payload bytes of the large message still to read.
  std::size_t large_left() const noexcept { return large_left_; }
  /// The writer is done with a large message: its memory may serve the next large message
  /// received (spare_string::offer); `s` is left as it was when it may not.
  void offer_spare(std::string&& s) noexcept { spare_.offer(std::move(s)); }
  /// The writer has nothing left to send: the memory kept is freed.
  void drop_spare() noexcept { spare_.drop(); }
  /// One socket read of the rest into `out` (as begun by begin_large), and of whatever
  /// follows the frame into memory in the same read (a second buffer), counted and stamped;
  /// completes with its error.
  template <class Handler>
  void read_large(std::string& out, Handler&& h) {
    char* at = out.data() + (out.size() - large_left_);
    const std::array<asio::mutable_buffer, 2> into{asio::buffer(at, large_left_), rbuf_.prepare(read_chunk_)};
    raw_read(into, [this, at, h = std::forward<Handler>(h)](error_code ec, std::size_t n) mutable {
      const auto mine = std::min(n, large_left_);
      if (mine > 0) {
        counter_.feed(at, mine);
        last_rx_ = clock::now();
        large_left_ -= mine;
        if (large_left_ == 0) counter_.take();
      }
      received_chunk(n - mine, ec);
      std::move(h)(ec);
    });
  }

  /// While corked, writes are only gathered; `flush` uncorks, and completes once every byte
  /// written so far is on the socket (or the socket failed). With `whole_records` (the writer,
  /// whose next frames usually follow within a turn) over TLS, when a record or more waits,
  /// only its whole records are owed, and the flush completes once they are on the socket:
  /// the few bytes beyond go with the next frames appended (write_extent), or with the next
  /// flush without it.
  void cork() noexcept { corked_ = true; }
  void flush(asio::any_completion_handler<void(error_code)> h, bool whole_records = false);
  /// Bytes on the socket so far (a stream position, as appended()).
  std::uint64_t sent() const noexcept { return sent_; }

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

  /// Appends one whole, final, masked data frame (text or binary) built here in one pass:
  /// header, a fresh key from the CSPRNG pool, payload copied and masked eight bytes at a
  /// time. For uncompressed messages, at a frame boundary (not inside a frame Beast is
  /// writing): it skips Beast's own copy, masking and our re-masking of its key.
  bool can_append_frame() const noexcept {
    return rw_.at_frame_boundary() && !write_error_ && !close_sent_ && own_left_ == 0;
  }
  void append_frame(bool binary, const char* data, std::size_t n) { append_masked(binary ? 0x2u : 0x1u, data, n); }

  /// The same frame appended in pieces, for a message too large to hold twice in memory: the
  /// header (at a frame boundary), then `n` payload bytes over calls of append_payload, each
  /// piece masked as it is copied. Until the last byte, whatever Beast writes (a pong it
  /// answers with) waits in memory and follows the frame, so no frame lands inside another.
  void begin_frame(bool binary, std::size_t n);
  void append_payload(const char* data, std::size_t k);
  /// Bytes appended so far (the stream position when_sent waits for).
  std::uint64_t appended() const noexcept { return appended_; }
  /// Completes once the first `upto` bytes appended are on the socket (or the socket failed).
  void when_sent(std::uint64_t upto, asio::any_completion_handler<void(error_code)> h);

  /// Appends our Close frame (RFC 6455 §5.5.1) at a frame boundary. From then on nothing more
  /// goes out: what Beast writes later (its answer to the peer's Close, a ping) is taken and
  /// dropped, so the reader can go on receiving the messages the peer sends before its Close.
  void append_close(std::uint16_t code, std::string_view reason);
  bool close_sent() const noexcept { return close_sent_; }

  /// The handshake response's status code once its header block arrived (0 before).
  unsigned response_status() const noexcept { return rw_.response_status(); }

  /// Synchronous reads and writes (Beast's synchronous read of a message that has already
  /// arrived, and the frames it answers with): reads are served from memory only, writes
  /// are gathered and sent by the transport's single writer.
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& b, error_code& ec) {
    ec = {};
    beast_idle_ = false;
    if (rbuf_.size() == 0) {
      ec = make_error_code(asio::error::would_block);  // never: the counter said it had arrived
      return 0;
    }
    const auto n = asio::buffer_copy(b, rbuf_.data());
    rbuf_.consume(n);
    return n;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& b) {
    error_code ec;
    const auto n = read_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& b, error_code& ec) {
    ec = write_error_;
    if (ec) return 0;
    const auto n = append(b);
    kick();
    return n;
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& b) {
    error_code ec;
    const auto n = write_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  /// Beast's teardown customisation points (found by ADL). The synchronous one runs when a
  /// synchronous read failed the connection: the close frame just gathered is sent first.
  friend void teardown(boost::beast::role_type, transport& t, error_code& ec) {
    t.close_when_drained();
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

  // A read of up to a read chunk into rbuf_ brought `got` bytes: received, and whether the
  // socket is drained (it had less than the chunk).
  void received_chunk(std::size_t got, error_code ec) {
    received(got);
    drained_ = !tls_ && !ec && got < read_chunk_;
  }

  // Bytes read into rbuf_: counted and stamped.
  void received(std::size_t got) {
    if (got == 0) return;
    rbuf_.commit(got);
    const auto all = rbuf_.cdata();
    counter_.feed(static_cast<const char*>(all.data()) + all.size() - got, got);
    last_rx_ = clock::now();
  }

  template <class B, class H>
  void start_read(const B& b, H&& h) {
    beast_idle_ = false;
    if (rw_.awaiting_accept() && !response_header_ready()) {
      raw_read(rbuf_.prepare(read_chunk_), [this, b, h = std::forward<H>(h)](error_code ec, std::size_t got) mutable {
        received(got);
        if (!ec) return start_read(b, std::move(h));
        if (rbuf_.size() == 0) return std::move(h)(ec, std::size_t{0});
        const auto n = asio::buffer_copy(b, rbuf_.data());
        rbuf_.consume(n);
        std::move(h)(error_code{}, n);
      });
      return;
    }
    const auto want = asio::buffer_size(b);
    if (rbuf_.size() == 0 && read_error_) {  // what a fill met, after the bytes it brought
      asio::post(ex_, [h = std::forward<H>(h), ec = read_error_]() mutable { std::move(h)(ec, std::size_t{0}); });
      return;
    }
    if (rbuf_.size() > 0 || want == 0) {
      const auto n = asio::buffer_copy(b, rbuf_.data());
      rbuf_.consume(n);
      asio::post(ex_, [h = std::forward<H>(h), n]() mutable { std::move(h)(error_code{}, n); });
      return;
    }
    if (want >= read_chunk_) {
      // Large reads (message payloads) go straight into the caller's buffer.
      raw_read(b, [this, b, want, h = std::forward<H>(h)](error_code ec, std::size_t n) mutable {
        drained_ = !tls_ && !ec && n < want;
        if (n > 0) {
          last_rx_ = clock::now();
          std::size_t left = n;
          for (auto it = asio::buffer_sequence_begin(b); left > 0 && it != asio::buffer_sequence_end(b); ++it) {
            const asio::const_buffer piece(*it);
            const auto k = std::min(left, piece.size());
            counter_.feed(static_cast<const char*>(piece.data()), k);
            left -= k;
          }
        }
        std::move(h)(ec, n);
      });
      return;
    }
    raw_read(rbuf_.prepare(read_chunk_),
             [this, b, h = std::forward<H>(h)](error_code ec, std::size_t got) mutable {
               received_chunk(got, ec);
               if (ec && rbuf_.size() == 0) return std::move(h)(ec, std::size_t{0});
               const auto n = asio::buffer_copy(b, rbuf_.data());
               rbuf_.consume(n);
               std::move(h)(error_code{}, n);
             });
  }

  // Every byte Beast writes is copied once into the gathering buffer and passed through the
  // key rewriter. Only one socket write runs at a time (the transport's own), so frames from
  // Beast's asynchronous and synchronous paths never interleave.
  template <class B>
  std::size_t append(const B& b) {
    const auto n = asio::buffer_size(b);
    if (close_sent_) return n;  // after our Close nothing more may be sent
    // Inside our own frame (begin_frame) the bytes wait to follow it.
    const bool later = own_left_ > 0;
    auto& into = later ? deferred_ : pending_;
    const auto old = into.size();
    into.resize(old + n);
    asio::buffer_copy(asio::buffer(into.data() + old, n), b);
    rw_.outgoing(into.data() + old, n);
    if (!later) {
      appended_ += n;
      owe_all();
    }
    return n;
  }

  // An asynchronous write completes at once while little is waiting; otherwise (a large
  // message) once the socket has taken the bytes before it, which bounds the memory.
  template <class B, class H>
  void start_write(const B& b, H&& h) {
    if (write_error_) {
      asio::post(ex_, [h = std::forward<H>(h), ec = write_error_]() mutable { std::move(h)(ec, std::size_t{0}); });
      return;
    }
    const auto n = append(b);
    if (pending_.size() <= high_water_ || !writing_) {
      kick();
      asio::post(ex_, [h = std::forward<H>(h), n]() mutable { std::move(h)(error_code{}, n); });
      return;
    }
    parked_.emplace(std::forward<H>(h));
    parked_n_ = n;
  }

  void append_masked(unsigned opcode, const char* data, std::size_t n);
  void append_header(unsigned opcode, std::size_t n);
  // Everything appended is owed: Beast's frames (a pong, a close) and a close of ours wait for
  // no frame after them.
  void owe_all() noexcept { must_send_ = appended_; }
  std::size_t extent() const noexcept {
    return write_extent(pending_.size(), appended_ - pending_.size(), must_send_, tls_ ? tls_record_bytes : 0);
  }
  void kick() {
    if (!writing_ && !corked_ && !write_error_ && extent() > 0) write_pending();
  }
  void write_pending();
  void written(error_code ec, std::size_t n);
  /// Sends what the socket takes of inflight_ without waiting; `ec` only for a real failure.
  std::size_t send_now(error_code& ec);
  void close_when_drained();
  void start_teardown(asio::any_completion_handler<void(error_code)> h);

  struct flush_waiter {
    std::uint64_t upto;
    asio::any_completion_handler<void(error_code)> h;
  };

  executor_type ex_;
  tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  std::size_t read_chunk_;
  std::size_t high_water_;
  spare_string spare_;  // a sent message's memory for the next large one received
  boost::beast::flat_buffer rbuf_;
  frame_counter counter_;
  // Bytes to write. Growing them does not zero what the masking copy overwrites at once.
  template <class T>
  struct uninitialized_allocator : std::allocator<T> {
    template <class U>
    struct rebind {
      using other = uninitialized_allocator<U>;
    };
    template <class U>
    void construct(U* p) noexcept {
      ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  };
  using bytes = std::vector<char, uninitialized_allocator<char>>;
  bytes pending_, inflight_;
  bytes deferred_;  // Beast's bytes written inside our frame
  std::uint64_t own_left_ = 0;     // payload bytes of our frame still to append
  std::uint64_t own_phase_ = 0;    // payload bytes of it appended (the mask's phase)
  unsigned char own_key_[4] = {};  // its masking key
  std::uint64_t appended_ = 0, sent_ = 0;
  std::uint64_t must_send_ = 0;  // bytes before this position go without waiting for more (extent)
  std::deque<flush_waiter> waiters_;
  std::optional<asio::any_completion_handler<void(error_code, std::size_t)>> parked_;
  std::size_t parked_n_ = 0;
  error_code write_error_;
  error_code read_error_;  // the failure a fill met (see fill)
  key_rewriter rw_;
  bool corked_ = false;
  bool close_sent_ = false;
  bool writing_ = false;
  bool close_when_drained_ = false;
#if !(defined(MSG_DONTWAIT) && defined(MSG_NOSIGNAL))
  bool non_blocking_ = false;  // Asio's non-blocking mode is on (send_now needs it here)
#endif
  bool drained_ = false;
  bool beast_idle_ = false;  // Beast holds no byte of the stream (see take_whole)
  bool filling_ = false;     // a fill waits for the peer (see unread)
  std::size_t large_left_ = 0;  // payload of a large message still to read (see begin_large)
  clock::time_point last_rx_ = clock::now();
  char drain_[512];
};

}  // namespace tether::ws::detail
