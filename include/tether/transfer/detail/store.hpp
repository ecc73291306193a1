// tether/transfer/detail/store.hpp: the state directory: records written crash-safely, loaded
// and validated once, damaged ones set aside with their reason, and the snapshot list() reads.
#pragma once

#include <tether/transfer/detail/record.hpp>
#include <tether/transfer/types.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace tether::transfer::detail {

/// One state directory. Records and partial data are named after the id (file_stem). Used
/// from the manager's thread, except list(), which any thread may call.
class store {
 public:
  store(std::filesystem::path dir, net::logger log) : dir_(std::move(dir)), log_(std::move(log)) {}

  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::filesystem::path record_path(const std::string& id) const { return dir_ / (file_stem(id) + ".json"); }
  std::filesystem::path part_path(const std::string& id) const { return dir_ / (file_stem(id) + ".part"); }
  std::filesystem::path lock_path(const std::string& id) const { return dir_ / (file_stem(id) + ".lock"); }

  /// Takes the transfer's lock (one process runs a transfer at a time). When another process
  /// holds it: `state_locked`, and `why` names that process.
  TETHER_DECL file claim(const std::string& id, error_code& ec, std::string& why);
  /// The record of `id` as it is on disk now (another process may have moved it on): nothing
  /// when there is none; `ec` when it cannot be read or is damaged (then set aside, reported).
  TETHER_DECL std::optional<record> reread(const std::string& id, error_code& ec, std::string& why);

  /// Writes the record crash-safely and refreshes its line in list(). `forward_only`: a
  /// checkpoint that only advances the offset, for which the previous record stays true, so
  /// the directory need not be synced.
  TETHER_DECL error_code save(record& r, bool forward_only = false);
  /// Deletes a record and its partial data (remove, prune).
  TETHER_DECL void forget(const record& r);
  /// Deletes a transfer's partial data only.
  TETHER_DECL void discard_partial(const record& r);

  /// Reads every record of the directory: valid ones are handed to `take`; unreadable ones are
  /// left as they are (reported, and read again when their id is asked for); damaged ones set
  /// aside with their reason.
  TETHER_DECL void load(const std::function<void(record)>& take);


  /// Every known transfer and every problem, sorted by id. Any thread.
  TETHER_DECL std::vector<info> list() const;
  /// Removes set-aside records, temp files and orphaned partial data older than `cutoff`
  /// (files no record of any kind names). `live`: the file stems of known transfers.
  TETHER_DECL std::size_t prune_files(const std::set<std::string>& live, std::filesystem::file_time_type cutoff);
  /// Drops a transfer's line from list() (after forget).
  TETHER_DECL void drop(const std::string& id);

  /// A transfer's line of list().
  TETHER_DECL static info to_info(const record& r);

 private:
  void add_problem(const std::filesystem::path& p, std::string id, std::string why);
  void set_aside(const std::filesystem::path& p, const std::string& id, const std::string& why);
  void report_set_aside(const std::filesystem::path& aside);

  std::filesystem::path dir_;
  net::logger log_;
  mutable std::mutex mu_;             // guards the snapshot below (read by list())
  std::map<std::string, info> infos_;
  std::vector<info> problems_;
};

/// The whole of a record file. An open or read error is reported as such: it says nothing
/// about the record, which is left alone and read again by the next process.
TETHER_DECL error_code read_record_text(const std::filesystem::path& p, std::string& text);
/// The id a damaged record names, when its text still says (else its file stem).
TETHER_DECL std::string id_in(std::string_view text, const std::filesystem::path& p);
/// A URL for people: redacted, or "(invalid URL)".
TETHER_DECL std::string redacted_url(const std::string& url);
/// Milliseconds since the Unix epoch, now.
TETHER_DECL std::int64_t now_ms();

}  // namespace tether::transfer::detail
