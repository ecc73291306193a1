// tether/ws/detail/spare_string.hpp: which large messages are read straight into their own
// string, and the memory of a large message just sent, kept for the next one received (sans-io).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tether::ws::detail {

/// The large messages the transport reads from the socket straight into their own string
/// (transport::begin_large): more than half a read chunk of payload (a smaller one is read
/// whole into memory first) and at most 16 read chunks (what the head announces is allocated
/// at once; a larger message is left to Beast's buffer, which grows as its bytes come).
struct large_bounds {
  std::size_t read_chunk = 0;
  bool direct(std::uint64_t payload) const noexcept {
    return payload > read_chunk / 2 && payload <= std::uint64_t{16} * read_chunk;
  }
};

/// One string's memory from a large message that has been sent, for the next large message
/// received. With large messages going both ways, each one otherwise costs an allocation of
/// its size and a free; once glibc's thresholds have adapted to such sizes, whether a free
/// returns the top of its heap to the system (to be taken back, every page faulted in again,
/// at the next allocation) depends on the order of the allocations, not on the work done. At
/// 1 MiB / 4 over TLS that order made 1,078 brk calls for 400 messages instead of 18, and
/// cost a third of the throughput.
///
/// Bounded: one string, kept only when a received message could use it; a received message
/// gets it only when its payload fills at least half of it, so the application never holds
/// more than twice a message's bytes; the writer drops it when it has nothing left to send
/// (transport::drop_spare), so an idle connection keeps none.
class spare_string {
 public:
  explicit spare_string(large_bounds b) noexcept : b_(b) {}

  /// Keeps `s`'s memory (instead of the one kept) when some message read straight into its
  /// own string could use it; else `s` is left as it was, to be freed by its owner.
  void offer(std::string&& s) noexcept {
    // (Swaps, not assignments: a std::string assigned to keeps or passes on its memory.)
    if (usable(s.capacity())) std::string(std::move(s)).swap(s_);
  }
  /// Moves the kept memory into `out`, empty, when it holds `payload` bytes and at most twice
  /// that; false leaves `out` alone.
  bool give(std::string& out, std::uint64_t payload) noexcept {
    const std::uint64_t cap = s_.capacity();
    if (!b_.direct(payload) || cap < payload || cap > 2 * payload) return false;
    std::string kept;
    kept.swap(s_);
    out.swap(kept);  // what `out` held goes with `kept`
    out.clear();
    return true;
  }
  void drop() noexcept { std::string().swap(s_); }
  std::size_t capacity() const noexcept { return s_.capacity(); }

 private:
  // Some payload p with direct(p) and p <= cap <= 2p exists.
  bool usable(std::uint64_t cap) const noexcept {
    return cap > b_.read_chunk / 2 && cap <= std::uint64_t{32} * b_.read_chunk;
  }

  large_bounds b_;
  std::string s_;
};

}  // namespace tether::ws::detail
