// tether/transfer/detail/lifecycle.hpp: a transfer's lifecycle decisions without I/O: what a
// call with an id does to an existing record (join, replay, resume, run again, create, refuse)
// and how a run's end settles into the record's status. Tested by tables in
// tests/unit/transfer/decide.cpp.
#pragma once

#include <tether/transfer/detail/record.hpp>

#include <optional>
#include <string>

namespace tether::transfer::detail {

/// Why a run stopped early, if it did.
enum class stop_kind { none, cancel, pause, remove, shutdown };

/// What a call with an id does.
enum class attach_action {
  create,  ///< no transfer has this id: a new record
  join,    ///< it is running or queued: wait for its result
  resume,  ///< unfinished: continue from its checkpoint
  replay,  ///< finished and still true: answer with the stored result, move nothing
  rerun,   ///< finished but not to be replayed (failed, cancelled, or its file is gone): run it again
  refuse,  ///< an error (`error`, `why`)
};

struct attach_decision {
  attach_action action = attach_action::create;
  /// With rerun: what was made durable can be kept (re-verified on restore); false means
  /// start from zero (the finished file was moved away or proven wrong).
  bool keep_progress = false;
  error e = error::invalid_argument;
  std::string why;
};

/// What the shell knows when a call for `fresh.id` arrives.
struct attach_facts {
  const record* existing = nullptr;  ///< the record under this id, if any
  bool active = false;               ///< it is running or queued
  /// For a succeeded download: the destination as it is now (nothing when it is gone).
  std::optional<file_identity> destination;
};

/// Decides what a new call does. A succeeded download is replayed only while its destination
/// is the file it produced (same size, modification time and inode); failed and cancelled
/// transfers run again; a different URL, file or kind under the same id is refused.
TETHER_DECL attach_decision decide_attach(const record& fresh, const attach_facts& f);

/// How a run's end is kept.
struct settlement {
  transfer::status status = status::waiting;
  bool final = false;            ///< the result is stored and replayed until the transfer reruns
  bool discard_partial = false;  ///< the partial data can never serve again: give the space back
  /// Overrides of the result for a stopped run (empty when the run ended by itself).
  std::optional<net::outcome> outcome;
  error_code error;
  std::string message;
};

/// Settles a run that ended as `res` (or was stopped by `stop`). Cancel is final; pause,
/// remove and shutdown keep the transfer resumable; a failure keeps what is durable (a rerun
/// continues it) unless the content was proven wrong (integrity_mismatch) or nothing is durable.
TETHER_DECL settlement settle(stop_kind stop, const result& res);

}  // namespace tether::transfer::detail
