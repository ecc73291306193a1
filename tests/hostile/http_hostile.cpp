// Hostile HTTP servers against downloads: each attack ends in bounded time with a clear error
// and bounded memory. Time and peak RSS are printed (one ctest process per case).
#include "support/transfer_helpers.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "support/rss.hpp"
#include <sys/socket.h>

#include <functional>
#include <mutex>
#include <thread>

using namespace tether::test;
using tether::error;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

using tether::test::peak_rss_kib;

namespace {

/// A server on 127.0.0.1 that reads each request's header and answers with whatever `respond`
/// writes (blocking, one thread per connection).
class raw_http_server {
 public:
  using responder = std::function<void(tcp::socket&)>;
  explicit raw_http_server(responder r) : respond_(std::move(r)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    accept_thread_ = std::thread([this] {
      for (;;) {
        tcp::socket s(ioc_);
        tether::error_code ec;
        acceptor_.accept(s, ec);
        if (ec) return;
        std::lock_guard lk(mu_);
        conns_.emplace_back([this, s = std::move(s)]() mutable {
          asio::streambuf buf;
          tether::error_code rec;
          asio::read_until(s, buf, "\r\n\r\n", rec);
          if (!rec) respond_(s);
          tether::error_code ig;
          s.shutdown(tcp::socket::shutdown_both, ig);
        });
      }
    });
  }
  ~raw_http_server() {
    // close() alone does not wake a thread blocked in accept(); shutdown() does (Linux). The
    // acceptor object is closed only once its thread has left it.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    tether::error_code ig;
    acceptor_.close(ig);
    std::lock_guard lk(mu_);
    for (auto& t : conns_) t.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }

 private:
  responder respond_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
};

void send(tcp::socket& s, const std::string& text) {
  tether::error_code ig;
  asio::write(s, asio::buffer(text), ig);
}

/// Downloads from `server` once and reports time, memory and the error.
tt::result attack(raw_http_server& server, tt::options o) {
  transfer_env env;
  o.state_dir = env.state;
  const auto t0 = std::chrono::steady_clock::now();
  tt::result r;
  {
    tt::manager m(env.pool.get_executor(), o);
    r = download(m, env.download(server.url("/x"), "x.bin"), "x");
    CHECK(!std::filesystem::exists(env.dir / "x.bin"));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::printf("hostile: %s: %lld ms, peak RSS %ld KiB, attempts %u, error '%s': %s\n",
              Catch::getResultCapture().getCurrentTestName().c_str(), static_cast<long long>(took.count()),
              peak_rss_kib(), r.attempts, r.error.message().c_str(), r.message.c_str());
  CHECK(took < 20s);
  CHECK(peak_rss_kib() < tether::test::rss_bound_kib());
  return r;
}

tt::options fast() {
  transfer_env env;  // only for its defaults
  auto o = env.options();
  o.retry.max_attempts = 3;
  return o;
}

}  // namespace

TEST_CASE("hostile http: an endless body of unannounced length", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    const std::string block(64 << 10, 'x');
    tether::error_code ec;
    while (!ec) asio::write(s, asio::buffer(block), ec);
  });
  auto o = fast();
  o.max_download_bytes = 8u << 20;
  const auto r = attack(server, o);
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::too_large);
  CHECK(r.attempts == 1);
}

TEST_CASE("hostile http: an endless chunked body", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'y') + "\r\n";
    tether::error_code ec;
    while (!ec) asio::write(s, asio::buffer(chunk), ec);
  });
  auto o = fast();
  o.max_download_bytes = 8u << 20;
  const auto r = attack(server, o);
  CHECK(r.error == error::too_large);
}

TEST_CASE("hostile http: a negative Content-Length", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) { send(s, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc"); });
  const auto r = attack(server, fast());
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::protocol_error);
  CHECK(r.message.find("Content-Length") != std::string::npos);
  CHECK(r.attempts == 1);
}

TEST_CASE("hostile http: an overflowing Content-Length", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\nabc");
  });
  const auto r = attack(server, fast());
  CHECK(r.error == error::protocol_error);
  CHECK(r.attempts == 1);
}

TEST_CASE("hostile http: a Content-Length of 2^63 - 1 is refused before any byte is written", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n");
    const std::string block(64 << 10, 'x');
    tether::error_code ec;
    while (!ec) asio::write(s, asio::buffer(block), ec);
  });
  const auto r = attack(server, fast());
  CHECK(r.error == error::insufficient_space);
}

TEST_CASE("hostile http: an overflowing Content-Range", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\n"
            "Content-Range: bytes 0-99999999999999999999999/99999999999999999999999\r\n\r\nabc");
  });
  const auto r = attack(server, fast());
  CHECK(r.outcome == tt::outcome::failed);
  CHECK(r.error == error::range_mismatch);
  CHECK(r.attempts == 3);  // max_attempts counts the first
}

TEST_CASE("hostile http: a redirect loop", "[hostile][transfer]") {
  // This server closes every connection after its answer, so it says so: a client that reused
  // the connection for the next hop could otherwise meet the close (a reset) instead of the
  // loop, depending on which comes first.
  raw_http_server server([](tcp::socket& s) {
    send(s, "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  const auto r = attack(server, fast());
  CHECK(r.error == error::too_many_redirects);
}

TEST_CASE("hostile http: 10,000 headers", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n";
    for (int i = 0; i < 10'000; ++i) head += "X-Header-" + std::to_string(i) + ": value\r\n";
    send(s, head + "\r\nabc");
  });
  const auto r = attack(server, fast());
  CHECK(r.error == error::protocol_error);
  CHECK(r.message.find("header limit") != std::string::npos);
  CHECK(r.attempts == 1);
}

TEST_CASE("hostile http: a status line that is not HTTP", "[hostile][transfer]") {
  raw_http_server server([](tcp::socket& s) { send(s, "SSH-2.0-OpenSSH_9.2\r\n\r\n"); });
  const auto r = attack(server, fast());
  CHECK(r.error == error::protocol_error);
}
