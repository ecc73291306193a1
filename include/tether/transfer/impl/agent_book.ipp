// tether/transfer/impl/agent_book.ipp: sessions, owners and event numbers.
#pragma once

#include <tether/transfer/detail/agent_book.hpp>
#include <tether/transfer/detail/agent_protocol.hpp>
#include <tether/transfer/detail/json_reader.hpp>

namespace tether::transfer::detail::agent {

namespace {
constexpr kind book_kinds[] = {kind::download, kind::upload};
}  // namespace

nlohmann::json book::encode() const {
  json transfers = json::object();
  for (const auto& [id, o] : owned_) {
    transfers[id] = {{"session", o.session},
                     {"kind", to_string(o.kind)},
                     {"request", encode_add(o.kind, id, o.req)},
                     {"paused", o.paused},
                     {"finished", o.finished},
                     {"result_seq", o.result_seq}};
  }
  // Numbers below `reserved` may have been handed out: a restarted agent starts there. publish()
  // moves it a block ahead (and marks the book dirty) before it passes it, and the agent writes
  // the book before anyone can read the event.
  return {{"schema", static_cast<std::uint64_t>(book_schema)}, {"reserved", std::max(reserved_, next_)}, {"transfers", std::move(transfers)}};
}

std::optional<book> book::decode(const nlohmann::json& j, limits l, std::string& why) {
  if (!j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  reader rd{j, why, ""};
  const auto schema = rd.u64("schema");
  const auto reserved = rd.u64("reserved");
  if (!why.empty()) return std::nullopt;
  if (schema != book_schema) {
    why = "schema " + std::to_string(schema) + " (this agent reads " + std::to_string(book_schema) + ")";
    return std::nullopt;
  }
  if (reserved == 0 || reserved > (std::uint64_t{1} << 62)) {
    why = "\"reserved\" is out of range";
    return std::nullopt;
  }
  book b(l);
  b.next_ = b.start_ = b.reserved_ = reserved;
  auto t = j.find("transfers");
  if (t == j.end() || !t->is_object()) {
    why = "\"transfers\" is not an object";
    return std::nullopt;
  }
  for (auto it = t->begin(); it != t->end(); ++it) {
    reader o{*it, why, "transfer " + it.key() + ": "};
    if (!it->is_object()) {
      o.fail("not an object");
      return std::nullopt;
    }
    owned w;
    w.session = o.str("session");
    w.kind = o.enumeration("kind", book_kinds);
    w.paused = o.boolean("paused");
    w.finished = o.boolean("finished");
    w.result_seq = o.u64("result_seq", false);
    if (!why.empty()) return std::nullopt;
    auto r = it->find("request");
    if (r == it->end()) {
      o.fail("missing \"request\"");
      return std::nullopt;
    }
    std::string rwhy;
    auto a = decode_add(*r, w.kind, rwhy);
    if (!a || a->id != it.key()) {
      o.fail("\"request\": " + (rwhy.empty() ? std::string("its id differs") : rwhy));
      return std::nullopt;
    }
    w.req = std::move(a->req);
    b.owned_.emplace(it.key(), std::move(w));
  }
  return b;
}

bool book::open_session(const std::string& session) {
  if (queues_.count(session)) return true;
  if (queues_.size() >= limits_.max_sessions) return false;
  queues_[session].floor = start_;
  return true;
}

claim_result book::claim(const std::string& session, const std::string& id, kind k, const request& r) {
  if (auto it = owned_.find(id); it != owned_.end())
    return it->second.session == session ? claim_result::same : claim_result::other_session;
  if (owned_.size() >= limits_.max_transfers) return claim_result::limit_reached;
  owned o;
  o.session = session;
  o.kind = k;
  o.req = r;
  owned_.emplace(id, std::move(o));
  dirty_ = true;
  return claim_result::created;
}

owned* book::find(const std::string& id) {
  auto it = owned_.find(id);
  return it == owned_.end() ? nullptr : &it->second;
}

owned* book::find(const std::string& session, const std::string& id) {
  auto o = find(id);
  return o && o->session == session ? o : nullptr;
}

void book::forget(const std::string& id) {
  if (owned_.erase(id)) dirty_ = true;
}

std::uint64_t book::publish(const std::string& id, nlohmann::json body) {
  auto o = find(id);
  if (!o) return 0;
  const auto seq = next_++;
  if (next_ >= reserved_) {
    reserved_ = next_ + block;
    dirty_ = true;
  }
  auto& q = queues_[o->session];
  if (q.floor == 0) q.floor = start_;
  q.events.push_back(event{seq, std::move(body)});
  while (q.events.size() > limits_.max_events_per_session) {
    q.floor = q.events.front().seq + 1;
    q.events.pop_front();
  }
  return seq;
}

events_answer book::events_after(const std::string& session, std::uint64_t after, std::size_t max) const {
  events_answer a;
  a.cursor = after;
  std::uint64_t floor = start_;
  const queue* q = nullptr;
  if (auto it = queues_.find(session); it != queues_.end()) {
    q = &it->second;
    floor = std::max(floor, q->floor);
  }
  // A cursor from before what is kept, or from the future (another agent's state), has lost
  // events: the client reads the state and goes on from the newest number.
  if (after + 1 < floor || after >= next_) {
    a.gap = true;
    a.cursor = next_ - 1;
    return a;
  }
  if (!q) return a;
  for (const auto& e : q->events) {
    if (e.seq <= after) continue;
    if (a.events.size() >= max) break;
    a.events.push_back(e);
    a.cursor = e.seq;
  }
  return a;
}

}  // namespace tether::transfer::detail::agent
