// tether/transfer/detail/chunk_hashes.hpp: checkpoint chunk digests computed from the bytes as
// they are written, so that a finished chunk need not be read back from the file before its
// digest is recorded. No I/O: tested by tables in tests/unit/transfer/chunk_hashes.cpp.
//
// The invariant: a digest this gives is the digest of exactly the bytes written into the chunk,
// from its first byte to its last, in order. A chunk written any other way (a write that does not
// continue where the chunk's writing stopped, or that started past its first byte) has no digest
// here, and the caller reads it back from the file, as before. A chunk may change writer half-way
// (a failed connection's rest taken up by another): its running state belongs to the chunk, not
// to the writer, so the new writer continues it.
#pragma once

#include <tether/transfer/detail/file.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace tether::transfer::detail {

class chunk_hashes {
 public:
  /// Chunks of `chunk` bytes (> 0); with a known `length` the last chunk ends there.
  chunk_hashes(hash_algorithm alg, std::uint64_t chunk, std::optional<std::uint64_t> length)
      : alg_(alg), chunk_(chunk), length_(length) {}

  /// Bytes [at, at + n) were written with this content. For each chunk the write completed,
  /// calls `complete(index, digest)`, in order; the digest is empty when the chunk must be read
  /// back (it was not written whole and in order).
  template <class Complete>
  void wrote(std::uint64_t at, const char* data, std::size_t n, Complete&& complete) {
    while (n > 0) {
      const auto index = at / chunk_;
      const auto first = index * chunk_;
      auto last = first + chunk_;  // one past the chunk's last byte
      if (length_ && *length_ < last) last = *length_;
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, last > at ? last - at : n));
      auto it = running_.find(index);
      if (at == first) {
        it = running_.insert_or_assign(index, running{hasher(alg_), first}).first;
      } else if (it != running_.end() && it->second.at != at) {
        running_.erase(it);  // a gap or an overlap: this chunk is read back
        it = running_.end();
      }
      if (it != running_.end()) {
        it->second.h.update(data, take);
        it->second.at += take;
      }
      at += take;
      data += take;
      n -= take;
      if (at == last) {
        std::string digest;
        if (it != running_.end()) {
          digest = it->second.h.hex_digest();
          running_.erase(it);
        }
        complete(index, std::move(digest));
      }
    }
  }

  /// The digest of chunk `index` written from its first byte up to `end` (the content's last,
  /// shorter chunk when the length was not known), if that is what was written; the chunk's
  /// state is kept.
  std::optional<std::string> digest_upto(std::uint64_t index, std::uint64_t end) const {
    const auto it = running_.find(index);
    if (it == running_.end() || it->second.at != end) return std::nullopt;
    hasher copy(it->second.h);
    return copy.hex_digest();
  }

  /// Forgets every chunk in progress (the data was reset).
  void clear() noexcept { running_.clear(); }
  /// Chunks in progress: one per writer, and one per segment handed back half-way.
  std::size_t running_chunks() const noexcept { return running_.size(); }

 private:
  struct running {
    hasher h;
    std::uint64_t at;  ///< the next byte this chunk's hash expects
  };
  hash_algorithm alg_;
  std::uint64_t chunk_;
  std::optional<std::uint64_t> length_;
  std::map<std::uint64_t, running> running_;
};

}  // namespace tether::transfer::detail
