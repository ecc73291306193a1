// tether/transfer/impl/store.ipp: the state directory (records, set-aside damage, list, prune).
#pragma once

#include <tether/net/url.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/store.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>

#include <algorithm>

namespace tether::transfer::detail {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string redacted_url(const std::string& url) {
  auto u = net::parse_url(url);
  return u ? u->redacted() : std::string("(invalid URL)");
}

info store::to_info(const record& r) {
  using std::chrono::milliseconds;
  info i;
  i.id = r.id;
  i.kind = r.kind;
  i.status = r.status;
  i.url = redacted_url(r.url);
  i.file = r.file;
  i.bytes_durable = r.offset;
  i.bytes_total = r.length;
  i.result = r.result;
  i.result_delivered = r.result_delivered;
  i.created = std::chrono::system_clock::time_point{milliseconds{r.created_ms}};
  i.updated = std::chrono::system_clock::time_point{milliseconds{r.updated_ms}};
  return i;
}

error_code store::save(record& r, bool forward_only) {
  r.updated_ms = now_ms();
  error_code ec;
  replace_file(record_path(r.id), encode_record(r), ec, !forward_only);
  std::lock_guard lk(mu_);
  infos_[r.id] = to_info(r);
  return ec;
}

void store::forget(const record& r) {
  error_code ig;
  remove_file(record_path(r.id), ig);
  remove_file(part_path(r.id), ig);
  remove_file(lock_path(r.id), ig);  // held by the caller: nobody waits on it
  sync_directory(dir_, ig);
  drop(r.id);
}

file store::claim(const std::string& id, error_code& ec, std::string& why) {
  std::string holder;
  auto f = lock_file(lock_path(id), ec, holder);
  if (ec == error::state_locked)
    why = "transfer " + id + " is being run by another process" + (holder.empty() ? "" : " (pid " + holder + ")") +
          " sharing " + dir_.string();
  else if (ec)
    why = "cannot lock transfer " + id + ": " + describe_failure(ec);
  return f;
}

std::optional<record> store::reread(const std::string& id, error_code& ec, std::string& why) {
  const auto p = record_path(id);
  std::error_code xec;
  if (!std::filesystem::exists(p, xec)) {
    drop(id);
    return std::nullopt;
  }
  std::string text;
  if (auto rec = read_record_text(p, text)) {
    ec = rec;
    why = "the record of " + id + " cannot be read (" + describe_failure(rec) + ")";
    return std::nullopt;
  }
  auto r = decode_record(text, why);
  if (!r || r->id != id) {
    ec = r ? make_error_code(error::state_corrupt) : r.error();
    if (r) why = "its id does not match its file name";
    if (ec == error::state_version) {
      why = "the record of " + id + " was " + why + ": left as it is for that version";
      return std::nullopt;
    }
    set_aside(p, id, why);
    why = "the record of " + id + " is damaged (" + why + ")";
    return std::nullopt;
  }
  {
    std::lock_guard lk(mu_);
    infos_[r->id] = to_info(*r);
  }
  return std::move(*r);
}

void store::discard_partial(const record& r) {
  error_code ig;
  remove_file(part_path(r.id), ig);
}

void store::drop(const std::string& id) {
  std::lock_guard lk(mu_);
  infos_.erase(id);
}

void store::add_problem(const std::filesystem::path& p, std::string id, std::string why) {
  info i;
  i.id = std::move(id);
  i.status = status::failed;
  i.file = p;
  i.problem = std::move(why);
  log_(net::log_level::warn, "transfer " + i.id + ": " + i.problem);
  std::lock_guard lk(mu_);
  problems_.push_back(std::move(i));
}

error_code read_record_text(const std::filesystem::path& p, std::string& text) {
  error_code ec;
  auto f = open_file(p, O_RDONLY, ec);
  if (ec) return ec;
  char buf[64 << 10];
  for (std::uint64_t at = 0;;) {
    const auto n = read_some(f, buf, sizeof buf, at, ec);
    if (ec) return ec;
    if (n == 0) return {};
    text.append(buf, n);
    at += n;
    if (text.size() > (2u << 20)) return {};  // decode_record refuses it as too large
  }
}

std::string id_in(std::string_view text, const std::filesystem::path& p) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object()) {
    if (auto it = j.find("id"); it != j.end() && it->is_string()) return it->get<std::string>();
  }
  // The file stem (ids with dots keep them): the name less ".json" and what follows it.
  auto name = p.filename().string();
  const auto json_at = name.rfind(".json");
  return json_at == std::string::npos ? name : name.substr(0, json_at);
}

void store::set_aside(const std::filesystem::path& p, const std::string& id, const std::string& why) {
  auto aside = p;
  aside += ".corrupt";
  auto part = p;
  part.replace_extension(".part");
  auto part_aside = part;
  part_aside += ".corrupt";
  error_code rec, pec;
  rename_file(p, aside, rec);
  std::error_code xec;
  const bool had_part = std::filesystem::exists(part, xec);
  if (had_part) rename_file(part, part_aside, pec);
  nlohmann::json reason = {{"id", id}, {"reason", why}, {"record", aside.string()}};
  if (had_part && !pec) reason["partial_data"] = part_aside.string();
  error_code wec;
  replace_file(aside.string() + ".reason", reason.dump(), wec);
  if (rec) {
    add_problem(p, id, "damaged record (" + why + ") could not be set aside: " + rec.message());
    return;
  }
  add_problem(aside, id,
              "damaged record (" + why + "), set aside as " + aside.filename().string() +
                  (had_part && !pec ? " with its partial data as " + part_aside.filename().string() : std::string()));
}

void store::report_set_aside(const std::filesystem::path& aside) {
  std::string text;
  std::string id = id_in("", aside), why = "set aside earlier as damaged (no reason recorded)";
  if (!read_record_text(aside.string() + ".reason", text)) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.value("reason", nlohmann::json()).is_string()) {
      if (auto it = j.find("id"); it != j.end() && it->is_string()) id = it->get<std::string>();
      why = "damaged record (" + j["reason"].get<std::string>() + "), set aside as " + aside.filename().string();
      if (j.contains("partial_data") && j["partial_data"].is_string())
        why += " with its partial data as " +
               std::filesystem::path(j["partial_data"].get<std::string>()).filename().string();
    }
  } else {
    std::string record_text;
    if (!read_record_text(aside, record_text)) id = id_in(record_text, aside);
  }
  add_problem(aside, id, why);
}

void store::load(const std::function<void(record)>& take) {
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const auto& p = entry.path();
    const auto name = p.filename().string();
    if (name.ends_with(".json.corrupt")) {
      report_set_aside(p);
      continue;
    }
    if (p.extension() != ".json" || !entry.is_regular_file()) continue;
    std::string text;
    if (auto rec = read_record_text(p, text)) {
      // Unreadable is not damaged: leave it (and its data) as it is and keep its id out of use.
      add_problem(p, p.stem().string(),
                  "record cannot be read (" + describe_failure(rec) + "): left as it is, tried again next time");
      continue;
    }
    std::string why;
    auto r = decode_record(text, why);
    if (r && file_stem(r->id) != p.stem().string()) {
      why = "its id does not match its file name";
      r = make_error_code(error::state_corrupt);
    }
    if (!r) {
      if (r.error() == error::state_version) {
        add_problem(p, id_in(text, p), why + ": left as it is for that version");
        continue;
      }
      set_aside(p, id_in(text, p), why);
      continue;
    }
    // A transfer that was running when its process died is simply unfinished now; one that
    // another process runs (it holds the lock) is left as that process says.
    if (r->status == status::running || r->status == status::queued) {
      error_code lec;
      std::string holder;
      auto probe = lock_file(lock_path(r->id), lec, holder);
      if (lec != error::state_locked) r->status = status::waiting;
    }
    {
      std::lock_guard lk(mu_);
      infos_[r->id] = to_info(*r);
    }
    take(std::move(*r));
  }
}

std::vector<info> store::list() const {
  std::lock_guard lk(mu_);
  std::vector<info> out;
  for (auto& [id, i] : infos_) out.push_back(i);
  out.insert(out.end(), problems_.begin(), problems_.end());
  std::sort(out.begin(), out.end(), [](const info& a, const info& b) { return a.id < b.id; });
  return out;
}

std::size_t store::prune_files(const std::set<std::string>& live, std::filesystem::file_time_type cutoff) {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const auto& p = entry.path();
    const auto name = p.filename().string();
    if (name == "lock" || p.extension() == ".lock") continue;
    const bool temp = name.find(".tmp-") != std::string::npos;
    const bool corrupt = name.find(".corrupt") != std::string::npos;
    // Partial data is orphaned only when no record of any kind (readable or not) names it.
    std::error_code jec;
    const bool orphan = p.extension() == ".part" && !live.count(p.stem().string()) &&
                        !std::filesystem::exists(dir_ / (p.stem().string() + ".json"), jec);
    if (!(temp || corrupt || orphan)) continue;
    std::error_code tec;
    // Another process sharing the directory may be writing a record through a temp file now.
    const auto limit = temp ? std::min(cutoff, std::filesystem::file_time_type::clock::now() - std::chrono::minutes{1})
                            : cutoff;
    if (std::filesystem::last_write_time(p, tec) > limit || tec) continue;
    error_code rec;
    remove_file(p, rec);
    if (!rec) ++removed;
    if (corrupt) {
      std::lock_guard lk(mu_);
      std::erase_if(problems_, [&](const info& i) { return i.file == p; });
    }
  }
  return removed;
}

}  // namespace tether::transfer::detail
