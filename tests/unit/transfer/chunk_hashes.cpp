// Chunk digests from the bytes as written (detail/chunk_hashes.hpp), by table: which chunks a
// sequence of writes completes, and whether each digest comes from the writes (and equals the
// digest of the content) or is left to be read back from the file.
#include <tether/transfer/detail/chunk_hashes.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace td = tether::transfer::detail;

namespace {

const std::string content = "abcdefghijklmnopqrst";  // 20 bytes: chunks of 8, 8 and 4
constexpr std::uint64_t chunk = 8;

std::string digest_of(std::uint64_t from, std::uint64_t to) {
  td::hasher h(td::hash_algorithm::xxh3_128);
  h.update(content.data() + from, static_cast<std::size_t>(to - from));
  return h.hex_digest();
}

struct write_at {
  std::uint64_t at, n;
};

// A completed chunk: its index, and whether its digest came from the writes.
struct done {
  std::uint64_t index;
  bool hashed;
};

std::vector<std::pair<std::uint64_t, std::string>> replay(td::chunk_hashes& h, const std::vector<write_at>& writes) {
  std::vector<std::pair<std::uint64_t, std::string>> got;
  for (const auto& w : writes)
    h.wrote(w.at, content.data() + w.at, static_cast<std::size_t>(w.n),
            [&](std::uint64_t index, std::string digest) { got.emplace_back(index, std::move(digest)); });
  return got;
}

}  // namespace

TEST_CASE("chunk hashes: what each sequence of writes completes, hashed or to be read back",
          "[transfer][chunk_hashes]") {
  struct row {
    std::string what;
    std::vector<write_at> writes;
    std::vector<done> expect;
  };
  const std::vector<row> rows = {
      {"one write of everything", {{0, 20}}, {{0, true}, {1, true}, {2, true}}},
      {"pieces that straddle the chunk ends", {{0, 3}, {3, 7}, {10, 5}, {15, 5}}, {{0, true}, {1, true}, {2, true}}},
      {"a chunk left half-way and continued after another chunk (a writer change)",
       {{0, 5}, {8, 8}, {5, 3}},
       {{1, true}, {0, true}}},
      {"a gap in a chunk: read back", {{0, 4}, {6, 2}}, {{0, false}}},
      {"bytes written again (an overlap): read back", {{0, 6}, {4, 4}}, {{0, false}}},
      {"written from its middle only: read back", {{4, 4}}, {{0, false}}},
      {"written again from its first byte after a gap: hashed", {{0, 4}, {6, 2}, {0, 8}}, {{0, false}, {0, true}}},
      {"the last, shorter chunk", {{16, 4}}, {{2, true}}},
      {"the last chunk in pieces", {{16, 1}, {17, 3}}, {{2, true}}},
      {"a chunk not finished completes nothing", {{0, 7}, {8, 7}}, {}},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    td::chunk_hashes h(td::hash_algorithm::xxh3_128, chunk, content.size());
    const auto got = replay(h, r.writes);
    REQUIRE(got.size() == r.expect.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      INFO("completion " << k);
      CHECK(got[k].first == r.expect[k].index);
      const auto from = r.expect[k].index * chunk;
      const auto to = std::min<std::uint64_t>(from + chunk, content.size());
      CHECK(got[k].second == (r.expect[k].hashed ? digest_of(from, to) : std::string()));
    }
  }
}

TEST_CASE("chunk hashes: an unknown length completes whole chunks only, the last one is asked for",
          "[transfer][chunk_hashes]") {
  td::chunk_hashes h(td::hash_algorithm::xxh3_128, chunk, std::nullopt);
  const auto got = replay(h, {{0, 20}});
  REQUIRE(got.size() == 2);
  CHECK(got[1].second == digest_of(8, 16));
  CHECK(h.digest_upto(2, 20) == digest_of(16, 20));
  CHECK(h.digest_upto(2, 20) == digest_of(16, 20));  // asking does not consume it
  CHECK_FALSE(h.digest_upto(2, 19));                 // not what was written
  CHECK_FALSE(h.digest_upto(1, 16));                 // complete, handed over, forgotten
  h.clear();
  CHECK_FALSE(h.digest_upto(2, 20));
}

TEST_CASE("chunk hashes: state is kept only for chunks being written", "[transfer][chunk_hashes]") {
  td::chunk_hashes h(td::hash_algorithm::xxh3_128, chunk, content.size());
  replay(h, {{0, 4}, {8, 4}, {16, 2}});
  CHECK(h.running_chunks() == 3);  // one per writer
  replay(h, {{4, 4}, {12, 4}});
  CHECK(h.running_chunks() == 1);
  replay(h, {{19, 1}});  // a gap: forgotten, and read back
  CHECK(h.running_chunks() == 0);
}

TEST_CASE("chunk hashes: SHA-256 chunks (a record of an earlier version) are hashed the same way",
          "[transfer][chunk_hashes]") {
  td::chunk_hashes h(td::hash_algorithm::sha256, chunk, content.size());
  const auto got = replay(h, {{0, 8}});
  REQUIRE(got.size() == 1);
  CHECK(got[0].second == td::sha256_hex(content.substr(0, 8)));
}
