// The client's event queue and outbox rules (ws/detail/queues.hpp), by tables.
#include <tether/ws/detail/queues.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace td = tether::ws::detail;
using namespace std::chrono_literals;

namespace {

struct ev {
  char kind;  // 'm' a message, 's' a status event
  int n;
};
struct is_msg {
  bool operator()(const ev& e) const noexcept { return e.kind == 'm'; }
};
using events = td::event_queue<ev, is_msg>;

/// Runs `ops` ('m' push a message, 's' push a status event, 'p' pop) and returns what is left
/// as text ("m0 s1 ..."), and how many status events were dropped.
std::string run(events& q, const std::string& ops, int& dropped) {
  int n = 0;
  for (char op : ops) {
    if (op == 'm') q.push(ev{'m', n++});
    if (op == 's' && q.push_status(ev{'s', n++})) ++dropped;
    if (op == 'p') q.pop();
  }
  std::string left;
  while (!q.empty()) {
    const auto e = q.pop();
    left += (left.empty() ? "" : " ") + std::string(1, e.kind) + std::to_string(e.n);
  }
  return left;
}

struct item {
  int id;
  std::size_t size;
  std::chrono::steady_clock::time_point expires;
  std::size_t bytes() const noexcept { return size; }
};
using outbox = td::outbox_queue<item>;

}  // namespace

TEST_CASE("ws queues: the event queue is full at its limit and resumes below half of it", "[ws][queues]") {
  struct row {
    std::size_t limit;
    std::size_t queued;
    bool full, must_wait;
  };
  const row rows[] = {
      {4, 0, false, false}, {4, 2, false, false}, {4, 3, false, true},  {4, 4, true, true}, {4, 5, true, true},
      {0, 0, false, false}, {0, 1, true, true},   {1, 1, true, true},   {64, 32, false, false},
      {64, 33, false, true}, {64, 64, true, true},
  };
  for (const auto& r : rows) {
    INFO("limit " << r.limit << ", " << r.queued << " queued");
    events q(r.limit);
    for (std::size_t i = 0; i < r.queued; ++i) q.push(ev{'m', static_cast<int>(i)});
    CHECK(q.full() == r.full);
    CHECK(q.must_wait() == r.must_wait);
  }
}

TEST_CASE("ws queues: status events never wait, use a reserve, then the oldest status gives way", "[ws][queues]") {
  struct row {
    const char* name;
    std::size_t limit;
    std::string ops;
    std::string left;
    int dropped;
  };
  const std::string reserve(events::status_reserve, 's');
  std::string reserve_left;  // the statuses s2..s33 after two messages
  for (std::size_t i = 0; i < events::status_reserve; ++i)
    reserve_left += " s" + std::to_string(i + 2);
  const std::vector<row> rows = {
      {"below the limit: kept in order", 4, "msms", "m0 s1 m2 s3", 0},
      {"past the limit: statuses still go in", 1, "mss", "m0 s1 s2", 0},
      {"at limit + reserve: the oldest status goes, never a message", 2, "mm" + reserve + "s",
       "m0 m1" + reserve_left.substr(reserve_left.find(" s3")) + " s34", 1},
      {"only messages at limit + reserve: nothing dropped", 1, std::string(33, 'm') + "s",
       [] {
         std::string l;
         for (int i = 0; i < 33; ++i) l += (i ? " m" : "m") + std::to_string(i);
         return l + " s33";
       }(),
       0},
      {"pops free the reserve", 2, "mm" + reserve + "pp" + "s", reserve_left.substr(1) + " s34", 0},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    events q(r.limit);
    int dropped = 0;
    CHECK(run(q, r.ops, dropped) == r.left);
    CHECK(dropped == r.dropped);
  }
}

TEST_CASE("ws queues: the outbox admits within both bounds, never overflowing", "[ws][queues]") {
  struct row {
    std::vector<std::size_t> queued;
    std::size_t next;
    bool admitted;
  };
  const row rows[] = {
      {{}, 10, true},     {{}, 11, false},       {{6}, 4, true},  {{6}, 5, false},
      {{1, 1}, 0, false},  // three messages of max 2
      {{}, 0, true},      {{10}, 0, true},       {{}, std::numeric_limits<std::size_t>::max(), false},
      {{9}, std::numeric_limits<std::size_t>::max(), false},
  };
  for (const auto& r : rows) {
    INFO(r.queued.size() << " queued, next " << r.next);
    outbox q(2, 10);
    std::size_t total = 0;
    for (auto n : r.queued) {
      REQUIRE(q.admits(n));
      q.push(item{0, n, {}});
      total += n;
    }
    CHECK(q.bytes() == total);
    CHECK(q.admits(r.next) == r.admitted);
  }
}

TEST_CASE("ws queues: an expiry sweep completes what expired and keeps the rest in order", "[ws][queues]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const std::chrono::steady_clock::time_point never{};
  outbox q(16, 1000);
  q.push(item{0, 10, t0 + 1s});
  q.push(item{1, 20, never});
  q.push(item{2, 30, t0 + 3s});
  q.push(item{3, 40, t0 + 1s});
  q.push(item{4, 50, t0 + 2s});
  CHECK_FALSE(outbox::expired(q.front(), t0));
  CHECK(outbox::expired(q.front(), t0 + 1s));
  CHECK_FALSE(outbox::expired(item{9, 1, never}, std::chrono::steady_clock::time_point::max()));

  struct row {
    std::chrono::steady_clock::duration at;
    std::vector<int> gone, left;
    std::chrono::steady_clock::time_point next;
  };
  const row rows[] = {
      {0s, {}, {0, 1, 2, 3, 4}, t0 + 1s},
      {1s, {0, 3}, {1, 2, 4}, t0 + 2s},
      {2500ms, {4}, {1, 2}, t0 + 3s},
      {1h, {2}, {1}, std::chrono::steady_clock::time_point::max()},
  };
  for (const auto& r : rows) {
    INFO("sweep at t0 + " << std::chrono::duration_cast<std::chrono::milliseconds>(r.at).count() << " ms");
    std::vector<int> gone;
    const auto next = q.sweep(t0 + r.at, [&gone](item i) { gone.push_back(i.id); });
    CHECK(gone == r.gone);
    CHECK(next == r.next);
    std::vector<int> left;
    std::size_t bytes = 0;
    outbox copy(16, 1000);
    while (!q.empty()) {
      auto i = q.pop();
      left.push_back(i.id);
      bytes += i.size;
      copy.push(i);
    }
    CHECK(left == r.left);
    CHECK(copy.bytes() == bytes);
    while (!copy.empty()) q.push(copy.pop());
    CHECK(q.bytes() == bytes);
  }
}
