// frame_counter: whole messages counted from the incoming byte stream, however it is cut.
#include <tether/ws/detail/frame_counter.hpp>
#include <tether/ws/detail/key_rewriter.hpp>
#include <tether/ws/detail/reconnect_fsm.hpp>
#include <tether/ws/detail/spare_string.hpp>
#include <tether/ws/detail/tls_records.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <vector>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

using tether::ws::detail::frame_counter;

namespace {

std::string frame(unsigned char b0, std::size_t len, bool masked = false) {
  std::string f;
  f += static_cast<char>(b0);
  const char m = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    f += static_cast<char>(m | static_cast<char>(len));
  } else if (len < 65536) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  if (masked) f += std::string("\x01\x02\x03\x04", 4);
  return f + std::string(len, 'x');
}

const std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

// Feeds `s` in pieces of `step` bytes; returns the count after each piece.
std::size_t fed(const std::string& s, std::size_t step) {
  frame_counter c;
  for (std::size_t i = 0; i < s.size(); i += step) c.feed(s.data() + i, std::min(step, s.size() - i));
  return c.ready();
}

}  // namespace

TEST_CASE("frame_counter: counts final data frames after the response head, however the bytes are cut",
          "[ws][unit]") {
  const std::string stream = head + frame(0x82, 16) + frame(0x01, 3) + frame(0x89, 5) + frame(0x80, 300) +
                             frame(0x81, 0) + frame(0x8A, 0) + frame(0x82, 70000) + frame(0x82, 7, true);
  for (std::size_t step : {1u, 2u, 3u, 7u, 64u, 1000u, 100000u}) {
    INFO("step " << step);
    CHECK(fed(stream, step) == 5);  // 16 B; "3+300" fragmented; empty text; 70000 B; masked 7 B
  }
}

TEST_CASE("frame_counter: a message counts only once its last byte arrived", "[ws][unit]") {
  frame_counter c;
  const std::string s = head + frame(0x82, 1000);
  c.feed(s.data(), s.size() - 1);
  CHECK(c.ready() == 0);
  c.feed(s.data() + s.size() - 1, 1);
  CHECK(c.ready() == 1);
  c.take();
  CHECK(c.ready() == 0);
  c.take();  // never below zero
  CHECK(c.ready() == 0);
}

TEST_CASE("frame_counter: stops at a close frame, the response head's bytes never count", "[ws][unit]") {
  CHECK(fed(head + frame(0x82, 1) + frame(0x88, 2) + frame(0x82, 1), 1) == 1);
  // Frame-like bytes inside the head (before CRLF CRLF) are not frames.
  CHECK(fed("HTTP/1.1 101 OK\r\nX: \x82\x01x\r\n\r\n" + frame(0x81, 1), 1) == 1);
  // No head completed yet: nothing counts.
  CHECK(fed("HTTP/1.1 101 OK\r\n" + frame(0x81, 1), 1) == 0);
}

TEST_CASE("frame_counter: quiet only while nothing that arrived waits for the reader", "[ws][unit]") {
  // Each row: the frames after the head, how many messages are read, whether it is quiet then.
  // `arriving`: quiet, or only the frame now arriving is unread.
  struct row {
    const char* what;
    std::string frames;
    int taken;
    bool quiet;
    bool arriving;
  };
  const std::vector<row> rows = {
      {"nothing yet", "", 0, true, true},
      {"one byte of a frame's header", "\x82", 0, false, true},
      {"part of a frame's payload", frame(0x82, 100).substr(0, 50), 0, false, true},
      {"part of a frame's header", frame(0x82, 70000).substr(0, 5), 0, false, true},
      {"a message read, then part of the next", frame(0x82, 16) + frame(0x81, 9).substr(0, 4), 1, false, true},
      {"a whole frame of a fragmented message", frame(0x02, 3), 0, false, false},
      {"a whole message unread", frame(0x82, 16), 0, false, false},
      {"a whole message read", frame(0x82, 16), 1, true, true},
      {"a ping alone", frame(0x89, 4), 0, false, false},
      {"a ping after the last message", frame(0x82, 16) + frame(0x89, 0), 1, false, false},
      {"a ping, then part of a message", frame(0x89, 0) + frame(0x82, 16).substr(0, 5), 0, false, false},
      {"a ping before the last message (read with it)", frame(0x89, 0) + frame(0x82, 16), 1, true, true},
      {"a pong inside a fragmented message, then its end", frame(0x02, 3) + frame(0x8A, 0) + frame(0x80, 3), 1, true, true},
      {"a pong inside a fragmented message still open", frame(0x02, 3) + frame(0x8A, 0), 0, false, false},
      {"two messages, one read", frame(0x82, 1) + frame(0x82, 1), 1, false, false},
      {"two messages read", frame(0x82, 1) + frame(0x82, 1), 2, true, true},
      {"a close", frame(0x88, 2), 0, false, false},
      {"a message, then a close", frame(0x82, 1) + frame(0x88, 2), 1, false, false},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    frame_counter c;
    const auto s = head + r.frames;
    c.feed(s.data(), s.size());
    for (int i = 0; i < r.taken; ++i) c.take();
    CHECK(c.quiet() == r.quiet);
    CHECK(c.arriving() == r.arriving);
  }
  frame_counter c;  // the response head has not ended
  c.feed(head.data(), head.size() - 1);
  CHECK_FALSE(c.quiet());
  CHECK_FALSE(c.arriving());
}

TEST_CASE("mask_copy: equals the byte-wise RFC 6455 masking for every length and phase", "[ws][unit]") {
  const unsigned char key[4] = {0x12, 0x9a, 0xfe, 0x01};
  std::string in(160, '\0');
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<char>(i * 37 + 5);
  // Lengths across the 32-byte steps, the 8-byte words and the byte tail, each start phase,
  // unaligned starts, and in place.
  for (std::size_t n = 0; n <= 150; ++n) {
    for (std::size_t phase = 0; phase < 4; ++phase) {
      for (std::size_t off = 0; off < 3; ++off) {
        const auto* src = reinterpret_cast<const unsigned char*>(in.data() + off);
        std::string want(n, '\0');
        for (std::size_t i = 0; i < n; ++i) want[i] = static_cast<char>(src[i] ^ key[(phase + i) & 3]);
        std::string out(n, '\0');
        tether::ws::detail::mask_copy(reinterpret_cast<unsigned char*>(out.data()), src, n, key, phase);
        std::string inplace = in.substr(off, n);
        auto* p = reinterpret_cast<unsigned char*>(inplace.data());
        tether::ws::detail::mask_copy(p, p, n, key, phase);
        INFO("n " << n << " phase " << phase << " offset " << off);
        CHECK(out == want);
        CHECK(inplace == want);
      }
    }
  }
}

TEST_CASE("key_rewriter: Sec-WebSocket-Accept as RFC 6455 computes it, keys are 16 fresh random bytes", "[ws][handshake]") {
  using tether::ws::detail::key_rewriter;
  // RFC 6455 section 1.3's example.
  CHECK(key_rewriter::accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const auto a = key_rewriter::make_key(), b = key_rewriter::make_key();
  CHECK(a.size() == 24);  // base64 of 16 bytes
  CHECK(a != b);
}

TEST_CASE("key_rewriter: a forked child never hands out the random bytes its parent will", "[ws][unit]") {
  using tether::ws::detail::key_rewriter;
  // Keys come from a per-thread pool of kernel randomness; the child's copy of it must not be
  // used, or parent and child would send the same keys and masks.
  (void)key_rewriter::make_key();  // the pool is filled
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto key = key_rewriter::make_key();
    const auto n = ::write(fds[1], key.data(), key.size());
    ::_exit(n == static_cast<ssize_t>(key.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string child(24, '\0');
  std::size_t got = 0;
  while (got < child.size()) {
    const auto n = ::read(fds[0], child.data() + got, child.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(got == child.size());
  CHECK(child != key_rewriter::make_key());
}

TEST_CASE("key_rewriter: masking keys drawn as used stay fresh across the pool's refills", "[ws][unit]") {
  tether::ws::detail::key_rewriter rw;
  // 16, then 64, then 256 keys per draw: 1,000 keys span every refill size.
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(rw.fresh_mask());
  CHECK(seen.size() >= 990);  // 32-bit random keys: a handful of repeats at most
}

TEST_CASE("reconnect: the jitter's seeds differ per client without a system call each", "[ws][fsm]") {
  std::set<std::uint32_t> seeds;
  for (int i = 0; i < 1000; ++i) seeds.insert(tether::ws::detail::reconnect_fsm::fresh_seed());
  CHECK(seeds.size() >= 995);  // a counter through splitmix64, cut to 32 bits: a repeat or two at most
}

TEST_CASE("payload_length: the length field of a frame header in its three sizes", "[ws][unit]") {
  using tether::ws::detail::extended_length_bytes;
  using tether::ws::detail::payload_length;
  struct row {
    unsigned l7;
    std::vector<unsigned char> ext;
    std::uint64_t len;
  };
  const std::vector<row> rows = {
      {0, {}, 0},
      {1, {}, 1},
      {125, {}, 125},
      {126, {0x00, 0x7e}, 126},
      {126, {0x01, 0x00}, 256},
      {126, {0xff, 0xff}, 65535},
      {126, {0x00, 0x05}, 5},  // read as sent: whether it is the shortest form is the caller's check
      {127, {0, 0, 0, 0, 0, 1, 0x00, 0x00}, 65536},
      {127, {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}, 0x0102030405060708u},
      {127, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ~std::uint64_t{0}},
  };
  for (const auto& r : rows) {
    INFO("l7 " << r.l7 << ", expected " << r.len);
    REQUIRE(extended_length_bytes(r.l7) == r.ext.size());
    // Bytes past the field must not be read into it.
    auto bytes = r.ext;
    bytes.resize(bytes.size() + 8, 0xa5);
    CHECK(payload_length(r.l7, bytes.data()) == r.len);
  }
}

TEST_CASE("header_bytes: a frame header's size from its second byte", "[ws][unit]") {
  using tether::ws::detail::header_bytes;
  CHECK(header_bytes(0x00) == 2);
  CHECK(header_bytes(0x7d) == 2);
  CHECK(header_bytes(0x7e) == 4);
  CHECK(header_bytes(0x7f) == 10);
  CHECK(header_bytes(0x80) == 6);
  CHECK(header_bytes(0xfd) == 6);
  CHECK(header_bytes(0xfe) == 8);
  CHECK(header_bytes(0xff) == 14);
}

TEST_CASE("put_length: the shortest length field, read back as written", "[ws][unit]") {
  using tether::ws::detail::put_length;
  struct row {
    std::uint64_t n;
    unsigned mask_bit;
    std::vector<unsigned char> bytes;
  };
  const std::vector<row> rows = {
      {0, 0, {0x00}},
      {125, 0x80, {0xfd}},
      {126, 0, {0x7e, 0x00, 0x7e}},
      {65535, 0x80, {0xfe, 0xff, 0xff}},
      {65536, 0, {0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
      {0x0102030405060708u, 0x80, {0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}},
  };
  for (const auto& r : rows) {
    INFO("n " << r.n);
    std::vector<unsigned char> out(10, 0xa5);
    const auto k = put_length(out.data(), r.n, r.mask_bit);
    CHECK(std::vector<unsigned char>(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k)) == r.bytes);
    CHECK(out[k] == 0xa5);  // nothing written past the field
    CHECK(tether::ws::detail::payload_length(out[0] & 0x7fu, out.data() + 1) == r.n);
  }
}

TEST_CASE("ordinary_frame_at: the head of an ordinary message, and whether all of it arrived", "[ws][unit]") {
  using tether::ws::detail::ordinary_frame_at;
  const auto bytes = [](std::initializer_list<int> l) {
    std::string s;
    for (int b : l) s += static_cast<char>(b);
    return s;
  };
  struct row {
    const char* what;
    std::string in;
    std::uint64_t max;
    bool ok;
    bool whole;
    bool text;
    std::size_t header, payload;
  };
  const std::string p300(300, 'p');
  const std::vector<row> rows = {
      {"binary, 7-bit length", frame(0x82, 5), 0, true, true, false, 2, 5},
      {"text, empty", frame(0x81, 0), 0, true, true, true, 2, 0},
      {"16-bit length", frame(0x82, 300), 0, true, true, false, 4, 300},
      {"64-bit length", frame(0x82, 70000), 0, true, true, false, 10, 70000},
      {"followed by more bytes", frame(0x82, 3) + frame(0x89, 1), 0, true, true, false, 2, 3},
      {"at max", frame(0x82, 100), 100, true, true, false, 2, 100},
      {"over max", frame(0x82, 101), 100, false, false, false, 0, 0},
      {"payload not all here", frame(0x82, 300).substr(0, 200), 0, true, false, false, 4, 300},
      {"only the header here (64-bit)", frame(0x82, 70000).substr(0, 10), 0, true, false, false, 10, 70000},
      {"text, payload not all here", frame(0x81, 5).substr(0, 4), 0, true, false, true, 2, 5},
      {"over max, payload not all here", frame(0x82, 70000).substr(0, 10), 65536, false, false, false, 0, 0},
      {"header not all here (16-bit)", frame(0x82, 300).substr(0, 3), 0, false, false, false, 0, 0},
      {"header not all here (64-bit)", frame(0x82, 70000).substr(0, 9), 0, false, false, false, 0, 0},
      {"one byte", bytes({0x82}), 0, false, false, false, 0, 0},
      {"nothing", "", 0, false, false, false, 0, 0},
      {"not final (a fragment)", frame(0x02, 5), 0, false, false, false, 0, 0},
      {"continuation", frame(0x80, 5), 0, false, false, false, 0, 0},
      {"ping", frame(0x89, 5), 0, false, false, false, 0, 0},
      {"pong", frame(0x8A, 0), 0, false, false, false, 0, 0},
      {"close", frame(0x88, 2), 0, false, false, false, 0, 0},
      {"reserved opcode 3", frame(0x83, 1), 0, false, false, false, 0, 0},
      {"RSV1 (compressed)", frame(0xC2, 5), 0, false, false, false, 0, 0},
      {"RSV3", frame(0x92, 5), 0, false, false, false, 0, 0},
      {"masked", frame(0x82, 5, true), 0, false, false, false, 0, 0},
      {"5 in the 16-bit form", bytes({0x82, 126, 0, 5}) + "abcde", 0, false, false, false, 0, 0},
      {"300 in the 64-bit form", bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 1, 0x2c}) + p300, 0, false, false, false, 0, 0},
      {"top bit of the 64-bit length", bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}), 0, false, false, false, 0, 0},
      {"2^63-1 bytes announced, 64 KiB limit", bytes({0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), 65536, false, false, false, 0, 0},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    const auto f = ordinary_frame_at(reinterpret_cast<const unsigned char*>(r.in.data()), r.in.size(), r.max);
    CHECK(f.ok == r.ok);
    if (!r.ok) continue;
    CHECK(f.whole == r.whole);
    CHECK(f.text == r.text);
    CHECK(f.header == r.header);
    CHECK(f.payload == r.payload);
  }
}

TEST_CASE("ordinary_head_arriving: which heads of messages the reader gathers in memory until whole", "[ws][unit]") {
  using tether::ws::detail::ordinary_head_arriving;
  const auto bytes = [](std::initializer_list<int> l) {
    std::string s;
    for (int b : l) s += static_cast<char>(b);
    return s;
  };
  constexpr std::size_t chunk = 65536;
  struct row {
    const char* what;
    std::string in;
    std::uint64_t max;
    bool gather;
  };
  const std::vector<row> rows = {
      {"binary, part of the payload", frame(0x82, 1000).substr(0, 500), 0, true},
      {"text, part of the payload", frame(0x81, 1000).substr(0, 500), 0, true},
      {"only the header", frame(0x82, 1000).substr(0, 4), 0, true},
      {"first byte of a header", bytes({0x82}), 0, true},
      {"first byte of a text header", bytes({0x81}), 0, true},
      {"16-bit length, one byte of it", bytes({0x82, 126, 0x03}), 0, true},
      {"64-bit length, part of it", bytes({0x82, 127, 0, 0, 0}), 0, true},
      {"binary, half a chunk of payload", frame(0x82, chunk / 2).substr(0, 100), 0, true},
      {"binary, more than half a chunk (read straight into its string)", frame(0x82, chunk / 2 + 1).substr(0, 100), 0, false},
      {"text, a chunk with its header", frame(0x81, chunk - 4).substr(0, 100), 0, true},
      {"text, more than a chunk with its header", frame(0x81, chunk - 3).substr(0, 100), 0, false},
      {"64-bit length (larger than a chunk)", frame(0x82, 70000).substr(0, 20), 0, false},
      {"over max", frame(0x82, 1000).substr(0, 500), 999, false},
      {"at max", frame(0x82, 1000).substr(0, 500), 1000, true},
      {"whole (nothing to wait for)", frame(0x82, 1000), 0, false},
      {"whole and more", frame(0x82, 10) + bytes({0x82}), 0, false},
      {"nothing", "", 0, false},
      {"a fragment's head", frame(0x02, 1000).substr(0, 10), 0, false},
      {"a continuation's head", frame(0x80, 1000).substr(0, 10), 0, false},
      {"a ping's head", frame(0x89, 100).substr(0, 10), 0, false},
      {"a close's first byte", bytes({0x88}), 0, false},
      {"RSV1 (compressed)", frame(0xC2, 1000).substr(0, 10), 0, false},
      {"masked", frame(0x82, 1000, true).substr(0, 10), 0, false},
      {"masked, header not all here", bytes({0x82, 0xfe, 0x03}), 0, false},
      {"5 in the 16-bit form", bytes({0x82, 126, 0, 5, 'a'}), 0, false},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    CHECK(ordinary_head_arriving(reinterpret_cast<const unsigned char*>(r.in.data()), r.in.size(), r.max, chunk) ==
          r.gather);
  }
}

TEST_CASE("large_bounds: which payloads are read straight into their own string", "[ws][unit]") {
  const tether::ws::detail::large_bounds b{65536};
  struct row {
    std::uint64_t payload;
    bool direct;
  };
  const std::vector<row> rows = {
      {0, false},          {32768, false},      {32769, true},          {65536, true},
      {1u << 20, true},    {(1u << 20) + 1, false}, {std::uint64_t{1} << 40, false},
  };
  for (const auto& r : rows) {
    INFO(r.payload);
    CHECK(b.direct(r.payload) == r.direct);
  }
}

TEST_CASE("spare_string: a sent message's memory serves a received one that fills half of it or more", "[ws][unit]") {
  using tether::ws::detail::spare_string;
  // Read chunk 64 KiB: direct payloads are 32 KiB + 1 .. 1 MiB, so a kept capacity is
  // 32 KiB + 1 .. 2 MiB.
  struct row {
    const char* what;
    std::size_t offered;  ///< capacity of the string offered (0: none)
    std::uint64_t payload;
    bool kept;
    bool given;
  };
  const std::vector<row> rows = {
      {"same size", 200'000, 200'000, true, true},
      {"smaller message, over half", 200'000, 150'000, true, true},
      {"exactly half", 200'000, 100'000, true, true},
      {"under half", 200'000, 99'999, true, false},
      {"larger message", 200'000, 200'001, true, false},
      {"the largest direct payload", 1u << 20, 1u << 20, true, true},
      {"payload too large to be direct", 2u << 20, (1u << 20) + 1, true, false},
      {"largest kept capacity", 2u << 20, 1u << 20, true, true},
      {"capacity no direct message could fill half of", (2u << 20) + 1, 1u << 20, false, false},
      {"capacity under the smallest direct payload", 32'768, 32'768, false, false},
      {"small payload, never direct", 40'000, 20'000, true, false},
      {"nothing offered", 0, 100'000, false, false},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    spare_string s(tether::ws::detail::large_bounds{65536});
    std::string sent;
    if (r.offered) {
      sent.reserve(r.offered);
      sent.assign(10, 's');
    }
    const auto cap = sent.capacity();
    s.offer(std::move(sent));
    CHECK((s.capacity() == cap && cap > std::string().capacity()) == r.kept);
    CHECK(sent.capacity() == (r.kept ? std::string().capacity() : cap));  // NOLINT(bugprone-use-after-move)
    std::string got = "left alone";
    CHECK(s.give(got, r.payload) == r.given);
    if (r.given) {
      CHECK(got.empty());
      CHECK(got.capacity() == cap);
      CHECK(s.capacity() == std::string().capacity());
      CHECK_FALSE(s.give(got, r.payload));  // given once
    } else {
      CHECK(got == "left alone");
    }
  }
}

TEST_CASE("spare_string: the newest usable string is kept, and dropped on demand", "[ws][unit]") {
  tether::ws::detail::spare_string s(tether::ws::detail::large_bounds{65536});
  std::string a, b, small;
  a.reserve(300'000);
  b.reserve(100'000);
  small.reserve(1000);
  s.offer(std::move(a));
  CHECK(s.capacity() >= 300'000);
  s.offer(std::move(small));  // not usable: the one kept stays
  CHECK(s.capacity() >= 300'000);
  s.offer(std::move(b));  // usable: replaces it
  const auto cap = s.capacity();
  CHECK((cap >= 100'000 && cap < 300'000));
  s.drop();
  CHECK(s.capacity() == std::string().capacity());
  std::string got;
  CHECK_FALSE(s.give(got, 100'000));
}

TEST_CASE("write_extent: whole TLS records, and of the rest only what someone waits for", "[ws][unit]") {
  using tether::ws::detail::write_extent;
  constexpr std::size_t R = tether::ws::detail::tls_record_bytes;
  static_assert(R == 16384);
  struct row {
    std::size_t pending;
    std::uint64_t base, owed;
    std::size_t record, want;
  };
  const row rows[] = {
      // Plain TCP (no records): everything, owed or not.
      {16'512, 0, 0, 0, 16'512},
      {10, 100, 0, 0, 10},
      {0, 0, 0, R, 0},
      // Sixteen 1 KiB frames: one whole record, 128 bytes wait.
      {16'512, 0, 0, R, R},
      // Less than a record and nothing owed: nothing.
      {1'000, 50, 50, R, 0},
      // Owed bytes go in any case; the record they end in is filled with what follows.
      {1'000, 50, 1'050, R, 1'000},
      {1'000, 50, 60, R, 1'000},
      {20'000, 0, 17'000, R, 20'000},
      {40'000, 0, 17'000, R, 2 * R},
      // Owed bytes inside the whole records change nothing.
      {50'000, 1'000, 1'100, R, 3 * R},
      {50'000, 1'000, 1'000 + 3 * R, R, 3 * R},
      // Owed before the pending bytes (already handed to a write): whole records only.
      {40'000, 5'000, 4'000, R, 2 * R},
      // A 64 KiB message framed (65,550 bytes): four records, 14 bytes wait.
      {65'550, 0, 0, R, 4 * R},
      // Everything owed: all of it.
      {65'550, 7, 7 + 65'550, R, 65'550},
  };
  for (const auto& r : rows) {
    INFO("pending " << r.pending << " base " << r.base << " owed " << r.owed << " record " << r.record);
    CHECK(write_extent(r.pending, r.base, r.owed, r.record) == r.want);
  }
}
