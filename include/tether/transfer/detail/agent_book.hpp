// tether/transfer/detail/agent_book.hpp: the agent's bookkeeping without I/O: which session owns
// which transfer (and the request to run it again), the event number, and each session's
// bounded queue of events. Its durable part is one JSON document the agent writes crash-safely
// whenever `dirty()` says so.
//
// Event numbers only grow, across restarts too: the document reserves a block of numbers ahead
// (`reserved`), and a restarted agent starts after the last block. Events themselves are not
// durable; a client whose cursor is older than what its session's queue still holds (a restart,
// an overflow) is told `gap` and reads the state instead. Results are durable (in the manager's
// records) until the session acknowledges them.
#pragma once

#include <tether/transfer/types.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tether::transfer::detail::agent {

inline constexpr int book_schema = 1;

/// A transfer the agent runs for a session.
struct owned {
  std::string session;
  transfer::kind kind = kind::download;
  request req;                  ///< to run it again after a restart or a pause
  bool paused = false;
  bool finished = false;        ///< its result waits for the session's ack
  std::uint64_t result_seq = 0;  ///< the number of its result event (durable, only grows)
};

struct event {
  std::uint64_t seq = 0;
  nlohmann::json body;  ///< {"type": ..., "id": ..., ...}
};

struct events_answer {
  std::vector<event> events;
  std::uint64_t cursor = 0;  ///< the last number the session may have seen
  bool gap = false;
};

enum class claim_result { created, same, other_session, limit_reached };

class book {
 public:
  struct limits {
    std::size_t max_transfers = 10'000;
    std::size_t max_sessions = 256;
    std::size_t max_events_per_session = 1024;
  };
  explicit book(limits l) : limits_(l) {}

  /// The durable document, and back (strict; nothing on `why`'s first problem).
  nlohmann::json encode() const;
  static std::optional<book> decode(const nlohmann::json& j, limits l, std::string& why);

  /// A session attaches (its queue exists from now on); false past `max_sessions`.
  bool open_session(const std::string& session);

  /// The transfer `id` for `session`: created (the caller persists, then starts it), the same
  /// session's already, another session's, or over the limit.
  claim_result claim(const std::string& session, const std::string& id, kind k, const request& r);
  /// The session's transfer, or nothing (unknown, or another session's: sessions see only
  /// their own).
  owned* find(const std::string& session, const std::string& id);
  owned* find(const std::string& id);
  void forget(const std::string& id);
  const std::map<std::string, owned>& all() const noexcept { return owned_; }

  /// Appends an event to the owner's queue (dropping its oldest past the limit) and returns
  /// its number; 0 when nobody owns `id`.
  std::uint64_t publish(const std::string& id, nlohmann::json body);
  events_answer events_after(const std::string& session, std::uint64_t after, std::size_t max) const;
  /// The newest number handed out (0: none yet in this run or before).
  std::uint64_t last_seq() const noexcept { return next_ - 1; }

  /// Set by changes that must reach the disk before they are acted on; cleared by the writer.
  bool dirty() const noexcept { return dirty_; }
  void clean() noexcept { dirty_ = false; }
  void touch() noexcept { dirty_ = true; }

 private:
  struct queue {
    std::deque<event> events;
    std::uint64_t floor = 0;  ///< events numbered below this may be lost to this session
  };
  static constexpr std::uint64_t block = 4096;

  limits limits_;
  std::map<std::string, owned> owned_;
  std::map<std::string, queue> queues_;
  std::uint64_t next_ = 1;      ///< the next event number
  std::uint64_t reserved_ = 1;  ///< numbers below this are reserved on disk
  std::uint64_t start_ = 1;     ///< this run's first number
  bool dirty_ = false;
};

}  // namespace tether::transfer::detail::agent
