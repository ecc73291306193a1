// tether/transfer/detail/download_run.hpp: one run of a download: the partial file, its
// background checkpoints, and the GETs that fill it (impl/checkpoint.ipp, impl/download.ipp).
#pragma once

#include <tether/net/url.hpp>
#include <tether/transfer/detail/chunk_hashes.hpp>
#include <tether/transfer/detail/connection.hpp>
#include <tether/transfer/detail/download_plan.hpp>
#include <tether/transfer/detail/file.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace tether::transfer::detail {

/// Checkpoints in the background: the partial file is synced on the syncer thread while the
/// download goes on; only when a sync is done does the record take the new offset (on the
/// manager's thread, in order). One sync at a time; boundaries reached meanwhile coalesce.
struct sync_state {
  file fd;  ///< a duplicate of the partial file's descriptor
  /// Of every complete chunk written so far, from the bytes as written (chunk_hashes); an empty
  /// one is read back from the file by the sync that covers it.
  std::vector<std::string> digests;
  std::size_t synced = 0;            ///< the chunks of `digests` synced and recorded
  std::uint64_t epoch = 0;           ///< bumped when the data is reset or the run ends
  bool busy = false;
  std::uint64_t next = 0;            ///< a boundary waiting for the current sync (0: none)
  error_code error;                  ///< a failed sync, reported by the next append
  std::string error_text;            ///< what failed, with the operation and the path
  asio::steady_timer* waiter = nullptr;  ///< the download waiting for a sync to finish
};

class download_run {
 public:
  explicit download_run(run_context& cx);
  ~download_run();
  download_run(const download_run&) = delete;
  download_run& operator=(const download_run&) = delete;

  /// Restores the partial data, then GETs until the file is complete, verified and in place.
  TETHER_DECL asio::awaitable<result> run();

 private:
  // impl/checkpoint.ipp: the partial file and its durability.
  error_code restore();
  /// A segmented download's restore: every chunk with a digest is read back and checked; one
  /// that differs is fetched again.
  error_code restore_segments();
  /// whole_ = the SHA-256 of the partial file's first `upto` bytes (when it is wanted).
  error_code hash_prefix(std::uint64_t upto);
  void restart_from_zero(bool count);
  /// The chunks hashed as written start over, with the record's chunk size and digest.
  void reset_hashes();
  error_code append(const char* data, std::size_t n);
  error_code checkpoint();
  result finalize();
  static void start_sync(run_context& cx, const std::shared_ptr<sync_state>& st, std::uint64_t offset);
  // impl/download.ipp: the requests.
  asio::awaitable<attempt_end> attempt();
  template <class Stream>
  asio::awaitable<attempt_end> exchange(Stream& stream, beast::tcp_stream& tcp, const net::endpoint_url& url,
                                        bool origin, std::optional<net::endpoint_url>& redirect);
  error_code begin_whole(const response_verdict& v, std::string& why);
  /// impl/segments.ipp does the work: this starts it and settles how it ended.
  asio::awaitable<attempt_end> segments(const net::endpoint_url& url, bool origin);
  /// The server refused ranges: keep the chunks held from byte 0 on, as one connection's offset.
  error_code to_one_connection();
  /// Finalize's part for a segmented download: the last syncs and digests, then the record as
  /// a complete one-connection download.
  error_code finish_segments();
  /// A failure's text: the syncer's own words for its errors, else the last file failure.
  std::string sync_failure(const error_code& ec) const;

  run_context& cx_;
  file part_;
  std::uint64_t written_ = 0;  ///< bytes in the partial file (>= rec.offset, the durable part)
  hasher whole_;
  bool want_whole_ = false;  ///< a whole-file SHA-256 is needed (expected, or to be reported)
  bool segment_now_ = false;  ///< the response just judged allows segments: end it, start them
  std::vector<char> buf_ = std::vector<char>(io_chunk);
  std::shared_ptr<sync_state> sync_ = std::make_shared<sync_state>();
  chunk_hashes hashes_;  ///< the running digest of the chunk being written
};

}  // namespace tether::transfer::detail
