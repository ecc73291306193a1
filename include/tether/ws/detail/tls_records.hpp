// tether/ws/detail/tls_records.hpp: how much of the gathered bytes one write takes over TLS, as a
// rule without I/O. Tested by a table in tests/unit/ws/frame_counter.cpp.
//
// Why: Asio's TLS stream turns a write into records of at most 16 KiB of plaintext and sends each
// record with a socket write of its own (its engine's output buffer holds one record). A write of
// sixteen 1 KiB messages (16,512 bytes with their frame headers) becomes a full record and a
// record of 128 bytes: two socket writes, and two reads and decryptions at the peer, where one
// would do. Writing whole records and letting the few bytes beyond wait for the next frames
// appended (which the writer is about to add) cut the socket writes at 1 KiB / 64 in flight from
// 16.6k to 13.4k per 200k messages, and a 64 KiB message (65,550 bytes framed) from five records
// to four.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace tether::ws::detail {

/// The plaintext a TLS record holds at most (RFC 8446 §5.1, RFC 5246 §6.2.1): 2^14 bytes.
inline constexpr std::size_t tls_record_bytes = std::size_t{1} << 14;

/// The bytes of `pending` (the first of them at stream position `base`) that one socket write
/// takes. Without records (`record` 0, plain TCP): all of them. With records: as many whole
/// records as they fill; bytes before stream position `owed` (someone waits for them to be on
/// the socket: a flush, a pong Beast wrote, a close) go in any case, and when they end inside a
/// record, that record is filled with what follows them. The rest waits for more bytes or for
/// someone to owe them, so it never waits unbounded: the writer owes everything before it
/// stops writing (client_impl::writer).
constexpr std::size_t write_extent(std::size_t pending, std::uint64_t base, std::uint64_t owed, std::size_t record) {
  if (record == 0) return pending;
  const std::size_t whole = pending / record * record;
  const std::uint64_t due = owed > base ? owed - base : 0;
  if (due <= whole) return whole;
  const std::uint64_t rounded = (due + record - 1) / record * record;
  return static_cast<std::size_t>(std::min<std::uint64_t>(rounded, pending));
}

}  // namespace tether::ws::detail
