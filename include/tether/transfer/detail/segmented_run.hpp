// tether/transfer/detail/segmented_run.hpp: one run of a segmented download: several
// connections, each fetching its own segment of the partial file with `Range` and `If-Range`,
// taking the next segment on the same connection (keep-alive) and splitting the largest one
// left when it runs out (work stealing); complete chunks (digested as they are written) are
// synced in the background, and only then recorded (impl/segments.ipp). The decisions are segment_plan's.
#pragma once

#include <tether/transfer/detail/chunk_hashes.hpp>
#include <tether/transfer/detail/connection.hpp>
#include <tether/transfer/detail/segment_plan.hpp>

#include <deque>
#include <memory>
#include <vector>

namespace tether::transfer::detail {

/// How a segmented run ended.
enum class segment_ending {
  complete,        ///< every chunk is written (the last syncs are finalize's)
  other_version,   ///< a response showed another version: everything must go
  one_connection,  ///< the server will not serve ranges of it: go on with one connection
  failed,          ///< the connections gave up (the attempt's end says why), or a fatal error
  stopped,         ///< the transfer was paused or cancelled
};

struct segment_sync;

class segmented_run {
 public:
  segmented_run(run_context& cx, file& part);
  ~segmented_run();
  segmented_run(const segmented_run&) = delete;
  segmented_run& operator=(const segmented_run&) = delete;

  /// Fetches the chunks `r.chunks` lacks from `url` (`origin`: the request's first origin,
  /// which alone gets its credentials) over up to `connections_per_download` connections.
  TETHER_DECL asio::awaitable<attempt_end> run(const net::endpoint_url& url, bool origin);
  segment_ending ending() const noexcept { return ending_; }
  /// Bytes of the content written (held at the start, plus what this run wrote).
  std::uint64_t written() const noexcept { return written_; }

 private:
  struct worker {
    std::uint64_t pos = 0, end = 0;  ///< its segment's bytes still to write: [pos, end)
    bool cut = false;                ///< its segment was split: drop its response at `end`
    std::function<void()> interrupt;  ///< aborts its connection's current operation
    asio::steady_timer* timer = nullptr;
    std::vector<char> buf;
  };

  /// Starts worker `i`'s connection loop.
  void spawn(std::size_t i);
  /// The first connection waited from `asked` until now for `got` bytes: one more read in the
  /// ramp's window, and the other connections opened when judge_ramp says so.
  void waited(steady::time_point asked, std::uint64_t got);
  asio::awaitable<void> work(std::size_t i);
  template <class Stream>
  asio::awaitable<attempt_end> serve(std::size_t i, Stream& stream, beast::tcp_stream& tcp);
  /// Gives worker `i` a segment: its own unfinished one, a queued one, or half of the largest
  /// one another worker has (false: nothing left).
  bool take(std::size_t i);
  /// Hands the rest of worker `i`'s segment back to the queue.
  void give_back(std::size_t i);
  error_code write(std::size_t i, const char* data, std::size_t n);
  /// Chunk `index` is complete: sync it and record it (`digest`: of what was written, or empty
  /// when the syncer must read it back).
  void chunk_written(std::uint64_t index, std::string digest);
  /// Ends the run for every worker: `how`, and `why` as the attempt's end.
  void halt(segment_ending how, attempt_end why);
  bool halted() const noexcept { return ending_ != segment_ending::complete || cx_.stopped(); }
  /// Waits on worker `i`'s timer until `until` (false: the run is ending).
  asio::awaitable<bool> wait(std::size_t i, steady::time_point until);

  run_context& cx_;
  file& part_;
  net::endpoint_url url_;
  bool origin_ = true;
  std::string host_;  ///< host:port, for the connections per host
  std::vector<worker> workers_;
  std::deque<span> queue_;
  std::shared_ptr<segment_sync> sync_;
  chunk_hashes hashes_;  ///< the digests of the chunks being written, from the bytes written
  std::uint64_t written_ = 0;
  std::uint64_t chunks_left_ = 0;
  std::size_t live_ = 0;
  bool ramped_ = true;           ///< every connection is open (or may be)
  ramp_sample sample_;           ///< the first connection's reads in the current window
  steady::time_point window_{};  ///< when the window began
  asio::steady_timer* all_done_ = nullptr;
  segment_ending ending_ = segment_ending::complete;  ///< complete: still running
  attempt_end end_;           ///< why the run was halted
  attempt_end last_failure_;  ///< the last connection's failure
  bool progressed_ = false;
};

}  // namespace tether::transfer::detail
