// Failure-point sweeps (Beast's fail_count, applied to the disk): a download interrupted and
// resumed, and a tus upload, are run once per file operation index N, with operation N failed
// (ENOSPC, then EIO; opens also EMFILE); then a fresh manager finishes the work. Each time: no
// crash, the error names the operation and the path, the file ends byte-identical, nothing is
// set aside, no durable data is thrown away, and what is fetched again stays within one
// max_unsynced_bytes window (plus what one read and the socket buffers hold).
#include "fixtures/http_server.hpp"
#include "support/transfer_helpers.hpp"

#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/record.hpp>

#include <atomic>
#include <mutex>

using namespace tether::test;
namespace td = tether::transfer::detail;

namespace {

/// Counts the engine's file operations under one directory and fails the Nth (0: none).
struct fault_plan {
  std::filesystem::path under;
  std::atomic<int> seen{0};
  int fail_at = 0;
  int err = 0;
  bool opens_only = false;
  std::mutex mu;
  std::string failed_path;  // what was failed, once it was
  td::file_op failed_op{};

  int ask(td::file_op op, const std::filesystem::path& p) {
    if (p.string().rfind(under.string(), 0) != 0) return 0;
    if (opens_only && op != td::file_op::open) return 0;
    if (++seen != fail_at) return 0;
    std::lock_guard lk(mu);
    failed_path = p.string();
    failed_op = op;
    return err;
  }
};

struct fault_scope {
  explicit fault_scope(const std::shared_ptr<fault_plan>& plan) {
    td::set_file_fault([plan](td::file_op op, const std::filesystem::path& p) { return plan->ask(op, p); });
  }
  ~fault_scope() { td::set_file_fault({}); }
  fault_scope(const fault_scope&) = delete;
  fault_scope& operator=(const fault_scope&) = delete;
};

void copy_tree(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

bool anything_set_aside(const std::filesystem::path& state) {
  for (auto& e : std::filesystem::directory_iterator(state))
    if (e.path().filename().string().find(".corrupt") != std::string::npos) return true;
  return false;
}

std::optional<std::string> first_range_after(const http_server& s, std::size_t from) {
  const auto log = s.requests();
  for (auto i = from; i < log.size(); ++i) {
    if (log[i].method != "GET") continue;
    auto it = log[i].headers.find("range");
    if (it == log[i].headers.end()) return std::string{};
    return it->second;
  }
  return std::nullopt;
}

struct sweep_counts {
  int runs = 0, failed_runs = 0, open_refusals = 0;
};

/// A run that failed says what failed: the operation and the path the fault hit.
void check_failure(fault_plan& plan, const tt::result& r, sweep_counts& counts) {
  if (r.outcome == tt::outcome::success) return;
  ++counts.failed_runs;
  std::lock_guard lk(plan.mu);
  INFO(r.message);
  if (plan.failed_path.empty()) return;
  CHECK(r.message.find(plan.failed_path) != std::string::npos);
  CHECK(r.message.find(td::to_string(plan.failed_op)) != std::string::npos);
}

}  // namespace

TEST_CASE("faults: every file operation of a resumed download fails in turn, then a fresh manager finishes",
          "[transfer][faults]") {
  http_server s;
  constexpr std::uint64_t size = 512u << 10;
  s.add_content("/f", size);
  transfer_env env;
  auto opts = env.options();
  opts.retry.max_attempts = 2;
  opts.max_unsynced_bytes = 128u << 10;
  opts.receive_buffer_bytes = 64u << 10;
  const auto req = env.download(s.url("/f"), "f.bin");
  // The interrupted download, once: paused with 128 KiB durable; each run starts from a copy.
  {
    pausing_manager pm(env, 128u << 10, opts);
    pm.run_until_paused(req, "sweep");
  }
  const auto snapshot = env.dir / "snapshot";
  copy_tree(env.state, snapshot);
  const auto lag = std::max<std::uint64_t>(opts.max_unsynced_bytes, 2 * opts.checkpoint_bytes);
  const std::uint64_t one_read = 256u << 10;       // what one read takes from a 64 KiB receive buffer
  const std::uint64_t socket_buffers = 1u << 20;   // the fixture's send buffer and ours, as the kernel sizes them
  const auto received_before = [&] {
    std::string why;
    auto rec = td::decode_record(read_file(snapshot / "sweep.json"), why);
    REQUIRE(rec.has_value());
    return rec->bytes_received;
  }();

  // How many operations a clean resume makes.
  int total = 0;
  {
    copy_tree(snapshot, env.state);
    auto plan = std::make_shared<fault_plan>();
    plan->under = env.dir;
    fault_scope scope(plan);
    tt::manager m(env.pool.get_executor(), opts);
    REQUIRE(download(m, req, "sweep").outcome == tt::outcome::success);
    total = plan->seen;
  }
  REQUIRE(total > 20);

  sweep_counts counts;
  struct pass {
    int err;
    bool opens_only;
  };
  for (const auto& p : {pass{ENOSPC, false}, pass{EIO, false}, pass{EMFILE, true}}) {
    for (int n = 1; n <= total; ++n) {
      copy_tree(snapshot, env.state);
      std::filesystem::remove(req.file);
      auto plan = std::make_shared<fault_plan>();
      plan->under = env.dir;
      plan->fail_at = n;
      plan->err = p.err;
      plan->opens_only = p.opens_only;
      INFO("errno " << p.err << ", operation " << n << " of " << total);
      const auto served_before = s.body_bytes_sent("/f");
      std::uint64_t durable_before = 0, durable_after = 0, received = 0;
      {
        fault_scope scope(plan);
        try {
          tt::manager m(env.pool.get_executor(), opts);
          if (auto i = find_info(m, "sweep")) durable_before = i->bytes_durable;
          const auto r = download(m, req, "sweep");
          received = r.bytes_received > received_before ? r.bytes_received - received_before : 0;
          check_failure(*plan, r, counts);
          if (auto i = find_info(m, "sweep")) durable_after = i->bytes_durable;
        } catch (const boost::system::system_error& e) {
          ++counts.open_refusals;  // the directory's lock could not be taken: said clearly
          CHECK(std::string(e.what()).find(env.state.string()) != std::string::npos);
        }
      }
      ++counts.runs;
      // What the failing run received beyond what it made durable is the loss of one failure:
      // at most one max_unsynced_bytes window and one read. The server also counts what sat in
      // the socket buffers.
      const auto progress = durable_after > durable_before ? durable_after - durable_before : 0;
      CHECK(received <= progress + lag + one_read);
      CHECK(s.body_bytes_sent("/f") - served_before <= progress + lag + one_read + socket_buffers);
      // A fresh manager, no faults: it continues from what is durable, never from less.
      const auto log_before = s.requests().size();
      {
        tt::manager m(env.pool.get_executor(), opts);
        const auto held = find_info(m, "sweep");
        REQUIRE(held);
        const auto durable = held->bytes_durable;
        const auto r = download(m, req, "sweep");
        INFO(r.message);
        REQUIRE(r.outcome == tt::outcome::success);
        if (auto range = first_range_after(s, log_before); range && durable > 0 && durable < size)
          CHECK(*range == "bytes=" + std::to_string(durable) + "-");
      }
      CHECK(read_file(req.file) == s.content("/f"));
      CHECK(!anything_set_aside(env.state));
    }
  }
  INFO("runs " << counts.runs << ", failed " << counts.failed_runs << ", refused to open " << counts.open_refusals);
  CHECK(counts.failed_runs > total);  // most failures end the run, loudly
  WARN("download sweep: " << total << " operations, " << counts.runs << " runs, " << counts.failed_runs
                          << " failed as they should, " << counts.open_refusals << " refused to open");
}

TEST_CASE("faults: every file operation of a tus upload fails in turn, then a fresh manager finishes",
          "[transfer][faults]") {
  transfer_env env;
  std::string data(300'000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  write_file(env.dir / "src.bin", data);
  tt::request req;
  req.file = env.dir / "src.bin";
  req.protocol = tt::upload_protocol::tus;
  req.chunk_size = 64u << 10;
  auto opts = env.options();
  opts.retry.max_attempts = 2;

  auto run_once = [&](const std::shared_ptr<fault_plan>& plan, sweep_counts& counts) {
    http_server s;
    s.enable_tus("/files/");
    req.url = s.url("/files/");
    std::filesystem::remove_all(env.state);
    {
      fault_scope scope(plan);
      try {
        tt::manager m(env.pool.get_executor(), opts);
        const auto r = upload(m, req, "up");
        check_failure(*plan, r, counts);
      } catch (const boost::system::system_error& e) {
        ++counts.open_refusals;
        CHECK(std::string(e.what()).find(env.state.string()) != std::string::npos);
      }
    }
    ++counts.runs;
    const auto posts_before = s.tus_uploads().size();
    tt::manager m(env.pool.get_executor(), opts);
    const auto r = upload(m, req, "up");
    INFO(r.message);
    REQUIRE(r.outcome == tt::outcome::success);
    const auto uploads = s.tus_uploads();
    const auto id = r.location.substr(r.location.rfind('/') + 1);
    REQUIRE(uploads.count(id));
    CHECK(uploads.at(id) == data);
    // The upload the failing run created is continued, not created again, whenever its URL
    // was recorded.
    CHECK(uploads.size() <= posts_before + 1);
    CHECK(!anything_set_aside(env.state));
    return plan->seen.load();
  };

  sweep_counts counts;
  auto count_plan = std::make_shared<fault_plan>();
  count_plan->under = env.dir;
  const int total = run_once(count_plan, counts);
  REQUIRE(total > 10);
  counts = {};
  struct pass {
    int err;
    bool opens_only;
  };
  for (const auto& p : {pass{ENOSPC, false}, pass{EIO, false}, pass{EMFILE, true}}) {
    for (int n = 1; n <= total; ++n) {
      INFO("errno " << p.err << ", operation " << n << " of " << total);
      auto plan = std::make_shared<fault_plan>();
      plan->under = env.dir;
      plan->fail_at = n;
      plan->err = p.err;
      plan->opens_only = p.opens_only;
      run_once(plan, counts);
    }
  }
  CHECK(counts.failed_runs > total);
  WARN("tus sweep: " << total << " operations, " << counts.runs << " runs, " << counts.failed_runs
                     << " failed as they should, " << counts.open_refusals << " refused to open");
}
