#pragma once

#include <tether/net/backoff.hpp>
#include <tether/net/detail/base64.hpp>
#include <tether/net/detail/tls_context.hpp>
#include <tether/net/http.hpp>
#include <tether/net/url.hpp>
#include <tether/transfer/detail/file.hpp>
#include <tether/transfer/detail/record.hpp>
#include <tether/transfer/manager.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <mutex>
#include <thread>

namespace tether::transfer::detail {

namespace beast = boost::beast;
namespace http = beast::http;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t io_chunk = 1u << 20;

inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(sys::now().time_since_epoch()).count();
}
inline bool equal_hex(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}
inline sys::time_point from_ms(std::int64_t ms) { return sys::time_point{std::chrono::milliseconds{ms}}; }

/// Paces bytes to a rate: each reservation of n bytes moves the earliest next send by n/rate.
class rate_limiter {
 public:
  /// When the caller may go on after moving `n` bytes at `rate` bytes/s (0: now).
  steady::time_point reserve(std::uint64_t rate, std::uint64_t n) {
    const auto now = steady::now();
    if (rate == 0) return now;
    // Allow a burst of 100 ms so that pacing does not stall on timer granularity.
    next_ = std::max(next_, now - std::chrono::milliseconds{100});
    next_ += std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(double(n) / double(rate)));
    return next_;
  }

 private:
  steady::time_point next_{};
};

enum class stop_kind { none, cancel, pause, remove, shutdown };

struct waiter {
  result_handler handler;
  asio::any_completion_executor work;  // the handler's executor, kept busy while the transfer runs
};

struct job {
  record rec;
  std::vector<waiter> waiters;
  stop_kind stop = stop_kind::none;
  bool running = false, queued = false;
  std::function<void()> interrupt;  // aborts what the transfer is waiting for right now
  rate_limiter pace;
  // Progress reporting
  steady::time_point progress_at{}, rate_at{};
  std::uint64_t rate_bytes_at = 0;
  double rate = 0;
};

/// What one attempt (one connection, after redirects) ended with.
struct attempt_end {
  error_code ec;
  unsigned status = 0;
  std::optional<std::chrono::seconds> retry_after;
  std::string message;
  bool progressed = false;  ///< new bytes arrived (resets the retry budget)
  bool complete = false;
};

}  // namespace tether::transfer::detail

namespace tether::transfer::detail {

struct manager_impl : std::enable_shared_from_this<manager_impl> {
  options opts;
  asio::any_io_executor user_ex;
  asio::io_context ioc{1};
  asio::thread_pool syncer{1};  // fdatasync of partial data, off the network path
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  file lock;
  std::shared_ptr<asio::ssl::context> tls;
  std::map<std::string, std::shared_ptr<job>> jobs;  // io thread only
  std::deque<std::shared_ptr<job>> pending;
  std::size_t running = 0;
  bool stopping = false;
  rate_limiter global_pace;

  mutable std::mutex info_mu;  // guards the snapshot below (read by list())
  std::map<std::string, info> infos;
  std::vector<info> problems;
  std::set<std::string> unreadable;  // file stems of records left alone (unreadable, newer schema)

  std::filesystem::path record_path(const record& r) const { return opts.state_dir / (file_stem(r.id) + ".json"); }
  std::filesystem::path part_path(const record& r) const { return opts.state_dir / (file_stem(r.id) + ".part"); }

  // ---- records ------------------------------------------------------------------------------
  static info to_info(const record& r) {
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
    i.created = from_ms(r.created_ms);
    i.updated = from_ms(r.updated_ms);
    return i;
  }
  static std::string redacted_url(const std::string& url) {
    auto u = net::parse_url(url);
    return u ? u->redacted() : std::string("(invalid URL)");
  }

  /// Writes the record crash-safely. `forward_only`: a checkpoint that only advances the
  /// offset, for which the previous record stays true, so the directory need not be synced.
  error_code save(record& r, bool forward_only = false) {
    r.updated_ms = now_ms();
    error_code ec;
    replace_file(record_path(r), encode_record(r), ec, !forward_only);
    std::lock_guard lk(info_mu);
    infos[r.id] = to_info(r);
    return ec;
  }
  void forget(const record& r) {
    std::error_code ig;
    std::filesystem::remove(record_path(r), ig);
    std::filesystem::remove(part_path(r), ig);
    error_code ig2;
    sync_directory(opts.state_dir, ig2);
    std::lock_guard lk(info_mu);
    infos.erase(r.id);
  }

  void add_problem(const std::filesystem::path& p, std::string id, std::string why) {
    info i;
    i.id = std::move(id);
    i.status = status::failed;
    i.file = p;
    i.problem = std::move(why);
    opts.log(net::log_level::warn, "transfer " + i.id + ": " + i.problem);
    problems.push_back(std::move(i));
  }

  /// The whole of a record file. An open or read error is reported as such: it says nothing
  /// about the record, which is left alone and read again by the next process.
  static error_code read_record_text(const std::filesystem::path& p, std::string& text) {
    error_code ec;
    auto f = open_file(p, O_RDONLY, ec);
    if (ec) return ec;
    char buf[64 << 10];
    for (std::uint64_t at = 0;;) {
      const auto n = read_some(f.get(), buf, sizeof buf, at, ec);
      if (ec) return ec;
      if (n == 0) return {};
      text.append(buf, n);
      at += n;
      if (text.size() > (2u << 20)) return {};  // decode_record refuses it as too large
    }
  }

  /// The id a damaged record names, when its text still says (else its file stem).
  static std::string id_in(std::string_view text, const std::filesystem::path& p) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object()) {
      if (auto it = j.find("id"); it != j.end() && it->is_string()) return it->get<std::string>();
    }
    // The file stem (ids with dots keep them): the name less ".json" and what follows it.
    auto name = p.filename().string();
    const auto json_at = name.rfind(".json");
    return json_at == std::string::npos ? name : name.substr(0, json_at);
  }

  /// Sets a damaged record aside with its partial data (renamed, never deleted) and keeps the
  /// reason beside them, so that every later process reports the same reason.
  void set_aside(const std::filesystem::path& p, const std::string& id, const std::string& why) {
    auto aside = p;
    aside += ".corrupt";
    auto part = p;
    part.replace_extension(".part");
    auto part_aside = part;
    part_aside += ".corrupt";
    std::error_code rec, pec;
    std::filesystem::rename(p, aside, rec);
    const bool had_part = std::filesystem::exists(part, pec);
    if (had_part) std::filesystem::rename(part, part_aside, pec);
    nlohmann::json reason = {{"id", id}, {"reason", why}, {"record", aside.string()}};
    if (had_part) reason["partial_data"] = part_aside.string();
    error_code wec;
    replace_file(aside.string() + ".reason", reason.dump(), wec);
    if (rec) {
      add_problem(p, id, "damaged record (" + why + ") could not be set aside: " + rec.message());
      return;
    }
    add_problem(aside, id,
                "damaged record (" + why + "), set aside as " + aside.filename().string() +
                    (had_part ? " with its partial data as " + part_aside.filename().string() : std::string()));
  }

  /// A record set aside by an earlier process: reported with the reason that process found.
  void report_set_aside(const std::filesystem::path& aside) {
    std::string text;
    std::string id = id_in("", aside), why = "set aside earlier as damaged (no reason recorded)";
    if (!read_record_text(aside.string() + ".reason", text)) {
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (j.is_object() && j.value("reason", nlohmann::json()).is_string()) {
        id = j.value("id", id);
        why = "damaged record (" + j["reason"].get<std::string>() + "), set aside as " + aside.filename().string();
        if (j.contains("partial_data") && j["partial_data"].is_string())
          why += " with its partial data as " + std::filesystem::path(j["partial_data"].get<std::string>()).filename().string();
      }
    } else {
      std::string record_text;
      if (!read_record_text(aside, record_text)) id = id_in(record_text, aside);
    }
    add_problem(aside, id, why);
  }

  void load() {
    for (const auto& entry : std::filesystem::directory_iterator(opts.state_dir)) {
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
        unreadable.insert(p.stem().string());
        add_problem(p, p.stem().string(),
                    "record cannot be read (" + rec.message() + "): left as it is, tried again next time");
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
          unreadable.insert(p.stem().string());
          add_problem(p, id_in(text, p), why + ": left as it is for that version");
          continue;
        }
        set_aside(p, id_in(text, p), why);
        continue;
      }
      auto j = std::make_shared<job>();
      j->rec = std::move(*r);
      // A transfer that was running when the process died is simply unfinished now.
      if (j->rec.status == status::running || j->rec.status == status::queued) j->rec.status = status::waiting;
      infos[j->rec.id] = to_info(j->rec);
      jobs[j->rec.id] = std::move(j);
    }
  }

  // ---- results ------------------------------------------------------------------------------
  result make_result(const job& j) const {
    const auto& r = j.rec;
    result res;
    res.id = r.id;
    res.kind = r.kind;
    res.file = r.file;
    res.final_url = redacted_url(r.final_url.empty() ? r.url : r.final_url);
    res.bytes_on_disk = r.offset;
    res.bytes_received = r.bytes_received;
    res.bytes_expected = r.length;
    res.attempts = r.attempts;
    res.restarts = r.restarts;
    if (!r.upload_url.empty()) res.location = redacted_url(r.upload_url);
    return res;
  }

  void deliver(job& j, const result& res) {
    for (auto& w : j.waiters) post_result(std::move(w.handler), w.work, res);
    j.waiters.clear();
  }

  /// Completes `h` with `value` through its executor (never inside the caller's stack).
  template <class Handler, class Value>
  static void post_result(Handler h, const asio::any_completion_executor& ex, Value value) {
    asio::dispatch(ex, [h = std::move(h), value = std::move(value)]() mutable { std::move(h)(std::move(value)); });
  }
  template <class Handler>
  asio::any_completion_executor tracked_executor(const Handler& h) const {
    return asio::prefer(asio::any_completion_executor(asio::get_associated_executor(h, user_ex)),
                        asio::execution::outstanding_work.tracked);
  }

  void add_waiter(job& j, result_handler h) {
    auto ex = tracked_executor(h);
    j.waiters.push_back(waiter{std::move(h), std::move(ex)});
  }

  /// The end of a transfer's run: store, report, free its slot.
  void finish(const std::shared_ptr<job>& j, result res) {
    auto& r = j->rec;
    switch (j->stop) {
      case stop_kind::cancel:
        res.outcome = outcome::failed;
        res.error = make_error_code(error::cancelled);
        res.message = "cancelled";
        break;
      case stop_kind::pause:
        res.outcome = outcome::retry_later;
        res.error = make_error_code(error::paused);
        res.message = "paused";
        break;
      case stop_kind::remove:
      case stop_kind::shutdown:
        res.outcome = outcome::retry_later;
        res.error = asio::error::operation_aborted;
        res.message = j->stop == stop_kind::remove ? "removed" : "the transfer manager shut down";
        break;
      case stop_kind::none: break;
    }
    const bool final_result = j->stop == stop_kind::cancel ||
                              (j->stop == stop_kind::none && res.outcome != outcome::retry_later);
    if (final_result) {
      r.status = res.outcome == outcome::success ? status::succeeded
                 : j->stop == stop_kind::cancel  ? status::cancelled
                                                 : status::failed;
      if (r.status != status::succeeded) {
        // Nothing to resume any more: give the space back.
        std::error_code ig;
        std::filesystem::remove(part_path(r), ig);
        if (r.kind == kind::download) {
          r.offset = 0;
          r.digests.clear();
        }
      }
      r.result = res;
      r.result_delivered = !j->waiters.empty();
    } else {
      r.status = j->stop == stop_kind::pause ? status::paused : status::waiting;
    }
    if (j->stop == stop_kind::remove) {
      forget(r);
      jobs.erase(r.id);
    } else if (auto ec = save(r)) {
      opts.log(net::log_level::error, "cannot write the record of transfer " + r.id + ": " + ec.message());
    }
    deliver(*j, res);
    j->stop = stop_kind::none;
  }

  // ---- scheduling ---------------------------------------------------------------------------
  void enqueue(const std::shared_ptr<job>& j) {
    if (j->running || j->queued) return;
    j->queued = true;
    j->rec.status = status::queued;
    if (auto ec = save(j->rec)) {
      j->queued = false;
      auto res = make_result(*j);
      res.error = ec;
      res.message = "cannot write the state record: " + ec.message();
      deliver(*j, res);
      return;
    }
    pending.push_back(j);
    pump();
  }

  void pump() {
    while (!stopping && running < opts.max_concurrent && !pending.empty()) {
      auto j = pending.front();
      pending.pop_front();
      j->queued = false;
      j->running = true;
      ++running;
      asio::co_spawn(ioc, run_job(j), asio::detached);
    }
  }

  asio::awaitable<void> run_job(std::shared_ptr<job> j) {
    auto self = shared_from_this();
    j->rec.status = status::running;
    result res;
    if (auto ec = save(j->rec)) {
      res = make_result(*j);
      res.error = ec;
      res.message = "cannot write the state record: " + ec.message();
    } else {
      try {
        if (j->stop == stop_kind::cancel) {  // a tus upload cancelled while idle (see stop_job)
          upload_io io;
          co_await terminate_upload(*j, io);
          res = make_result(*j);
        } else if (j->rec.earliest_start_ms > now_ms()) {
          const auto wait = std::chrono::milliseconds{j->rec.earliest_start_ms - now_ms()};
          co_await wait_until(*j, steady::now() + wait);
        }
        if (j->stop != stop_kind::none)
          res = make_result(*j);
        else if (j->rec.kind == kind::download)  // not `?:` around co_await: scripts/check_coawait.py
          res = co_await run_download(j);
        else
          res = co_await run_upload(j);
      } catch (const std::exception& e) {
        res = make_result(*j);
        res.outcome = outcome::failed;
        res.error = make_error_code(error::protocol_error);
        res.message = std::string("internal error: ") + e.what();
      }
    }
    j->running = false;
    j->interrupt = nullptr;
    --running;
    finish(j, std::move(res));
    if (stopping && running == 0) work.reset();
    pump();
  }

  /// Waits until `until` unless the transfer is stopped first (then false). `waker`, when
  /// given, points at the timer meanwhile, so that someone else can end the wait early.
  asio::awaitable<bool> wait_until(job& j, steady::time_point until, asio::steady_timer** waker = nullptr) {
    if (until <= steady::now()) co_return j.stop == stop_kind::none;
    asio::steady_timer t(ioc, until);
    auto outer = std::exchange(j.interrupt, [&t] { t.cancel(); });
    if (waker) *waker = &t;
    co_await t.async_wait(nothrow);
    if (waker) *waker = nullptr;
    j.interrupt = std::move(outer);  // what the caller was waiting on, if anything
    co_return j.stop == stop_kind::none;
  }

  // ---- progress -----------------------------------------------------------------------------
  void report(job& j, std::uint64_t done, bool force = false) {
    const auto now = steady::now();
    if (j.rate_at == steady::time_point{}) {
      j.rate_at = now;
      j.rate_bytes_at = done;
    } else if (now - j.rate_at >= std::chrono::milliseconds{500}) {
      const double secs = std::chrono::duration<double>(now - j.rate_at).count();
      const double inst = done >= j.rate_bytes_at ? double(done - j.rate_bytes_at) / secs : 0.0;
      j.rate = j.rate == 0 ? inst : 0.7 * j.rate + 0.3 * inst;
      j.rate_at = now;
      j.rate_bytes_at = done;
    }
    if (!opts.on_progress) return;
    if (!force && now - j.progress_at < opts.progress_interval) return;
    j.progress_at = now;
    progress p;
    p.id = j.rec.id;
    p.kind = j.rec.kind;
    p.bytes_done = done;
    p.bytes_durable = j.rec.offset;
    p.bytes_total = j.rec.length;
    p.bytes_per_second = j.rate;
    if (j.rec.length && j.rate > 0 && *j.rec.length >= done)
      p.eta = std::chrono::seconds{static_cast<std::int64_t>(double(*j.rec.length - done) / j.rate)};
    try {
      opts.on_progress(p);
    } catch (...) {
      // A throwing observer must not break the transfer.
    }
  }

  /// The tighter of the bandwidth limits in bytes/s (0: none).
  std::uint64_t pace_limit(const job& j) const {
    const auto a = j.rec.bandwidth_limit, b = opts.bandwidth_limit;
    return a && b ? std::min(a, b) : (a ? a : b);
  }
  /// Paces `n` new bytes against the per-transfer and global limits.
  asio::awaitable<bool> pace(job& j, std::uint64_t n) {
    const auto a = j.pace.reserve(j.rec.bandwidth_limit, n);
    const auto b = global_pace.reserve(opts.bandwidth_limit, n);
    co_return co_await wait_until(j, std::max(a, b));
  }

  steady::time_point deadline_of(const record& r) const {
    if (opts.resource_deadline.count() == 0) return steady::time_point::max();
    const auto left = from_ms(r.created_ms) + opts.resource_deadline - sys::now();
    return steady::now() + std::chrono::duration_cast<steady::duration>(left);
  }

  // ---- connections --------------------------------------------------------------------------
  /// Resolves, connects (bounded by connect_timeout and the deadline) and, for https, runs the
  /// TLS handshake; then `co_await use(stream)` with a plain or TLS stream.
  template <class Use>
  asio::awaitable<attempt_end> with_connection(job& j, const net::endpoint_url& url, Use&& use) {
    attempt_end end;
    beast::tcp_stream tcp(ioc);
    asio::ip::tcp::resolver resolver(ioc);
    j.interrupt = [&] {
      resolver.cancel();
      tcp.cancel();
    };
    tcp.expires_after(std::min(std::chrono::duration_cast<steady::duration>(opts.connect_timeout),
                               deadline_of(j.rec) - steady::now()));
    const std::string service = std::to_string(url.port);
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, service, nothrow);
    if (!rec) {
      auto [cec, ep] = co_await tcp.async_connect(endpoints, nothrow);
      rec = cec;
    }
    if (rec) {
      end.ec = rec == beast::error::timeout ? make_error_code(error::connect_timeout) : rec;
      end.message = "cannot connect to " + url.host_header() + ": " + end.ec.message();
      j.interrupt = nullptr;
      co_return end;
    }
    error_code ig;
    tcp.socket().set_option(asio::ip::tcp::no_delay(true), ig);
    if (opts.receive_buffer_bytes)
      tcp.socket().set_option(asio::socket_base::receive_buffer_size(static_cast<int>(opts.receive_buffer_bytes)), ig);
    if (!url.secure()) {
      co_return co_await use(tcp, tcp);
    }
    asio::ssl::stream<beast::tcp_stream> tls_stream(std::move(tcp), *tls);
    auto& lowest = tls_stream.next_layer();
    j.interrupt = [&lowest] { lowest.cancel(); };
    if (auto ec = net::detail::prepare_client_stream(tls_stream.native_handle(), url.host, opts.tls)) {
      end.ec = ec;
      end.message = "TLS setup for " + url.host + ": " + ec.message();
      co_return end;
    }
    lowest.expires_after(opts.connect_timeout);
    auto [hec] = co_await tls_stream.async_handshake(asio::ssl::stream_base::client, nothrow);
    if (hec) {
      end.ec = hec == beast::error::timeout ? make_error_code(error::handshake_timeout) : hec;
      end.message = "TLS handshake with " + url.host_header() + ": " + end.ec.message();
      co_return end;
    }
    end = co_await use(tls_stream, lowest);
    // A polite TLS close, bounded; the transfer's data is already safe.
    lowest.expires_after(std::chrono::seconds{1});
    co_await tls_stream.async_shutdown(nothrow);
    co_return end;
  }

  /// Arms the inactivity timer for the next operation (bounded by the deadline too).
  void arm(job& j, beast::tcp_stream& tcp) {
    tcp.expires_after(std::min(std::chrono::duration_cast<steady::duration>(opts.read_inactivity_timeout),
                               deadline_of(j.rec) - steady::now()));
  }
  error_code io_error(job& j, error_code ec) {
    if (ec == beast::error::timeout)
      return steady::now() >= deadline_of(j.rec) ? make_error_code(error::deadline_exceeded)
                                                 : make_error_code(error::inactivity_timeout);
    if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == asio::error::eof)
      return make_error_code(error::short_body);
    if (ec.category() == http_category()) return make_error_code(error::protocol_error);
    return ec;
  }
  static const boost::system::error_category& http_category() {
    return make_error_code(http::error::bad_content_length).category();
  }
  /// The text for an I/O failure: Beast's parse errors keep their precise wording.
  static std::string describe(const error_code& raw, const error_code& mapped) {
    if (raw.category() == http_category() && mapped == error::protocol_error)
      return "malformed response (" + raw.message() + ")";
    return mapped.message();
  }

  template <class Request>
  void add_headers(Request& req, const net::endpoint_url& url, const record& r, bool same_origin) {
    req.set(http::field::host, url.host_header());
    req.set(http::field::user_agent, "tether/" TETHER_VERSION_STRING);
    for (const auto& [k, v] : r.headers) {
      // Credentials never follow a redirect to another origin.
      if (!same_origin && net::is_secret_header(k)) continue;
      req.set(k, v);
    }
  }

  static bool same_origin(const net::endpoint_url& a, const net::endpoint_url& b) {
    return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
  }

  static std::optional<std::chrono::seconds> retry_after_of(const http::fields& h, std::chrono::seconds cap) {
    auto it = h.find(http::field::retry_after);
    if (it == h.end()) return std::nullopt;
    return net::parse_retry_after(std::string_view(it->value().data(), it->value().size()), sys::now(), cap);
  }

  static std::string field(const http::fields& h, http::field f) {
    auto it = h.find(f);
    return it == h.end() ? std::string{} : std::string(it->value());
  }

  // ---- downloads ----------------------------------------------------------------------------
  /// The partial file and the hashes that follow it.
  /// Checkpoints in the background: the partial file is synced on the syncer thread while the
  /// download goes on; only when a sync is done does the record take the new offset (on the
  /// manager's thread, in order). One sync at a time; boundaries reached meanwhile coalesce.
  struct sync_state {
    file fd;                           ///< a duplicate of the partial file's descriptor
    std::vector<std::string> digests;  ///< of every complete chunk written so far
    std::uint64_t epoch = 0;           ///< bumped when the data is reset or the run ends
    bool busy = false;
    std::uint64_t next = 0;            ///< a boundary waiting for the current sync (0: none)
    error_code error;                  ///< a failed sync, reported by the next append
    asio::steady_timer* waiter = nullptr;  ///< the download waiting for a sync to finish
  };

  struct download_io {
    file part;
    std::uint64_t written = 0;  ///< bytes in the partial file (>= rec.offset, the durable part)
    sha256 whole;
    bool want_whole = false;  ///< a whole-file SHA-256 is needed (expected, or to be reported)
    std::vector<char> buf = std::vector<char>(io_chunk);
    std::shared_ptr<sync_state> sync = std::make_shared<sync_state>();
    download_io() = default;
    download_io(const download_io&) = delete;
    download_io& operator=(const download_io&) = delete;
    ~download_io() {  // syncs still in flight no longer speak for this run
      ++sync->epoch;
      sync->next = 0;
    }
  };

  /// SHA-256 of each whole `chunk` of the file in [from, to), read back from the file.
  static std::vector<std::string> chunk_digests(int fd, std::uint64_t from, std::uint64_t to, std::uint64_t chunk,
                                                error_code& ec, hash_algorithm alg = hash_algorithm::sha256) {
    std::vector<std::string> out;
    std::vector<char> buf(io_chunk);
    for (auto begin = from; begin < to && !ec; begin += chunk) {
      const auto end = std::min(begin + chunk, to);
      hasher h(alg);
      for (auto off = begin; off < end;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - off));
        const auto n = read_some(fd, buf.data(), want, off, ec);
        if (ec) break;
        if (n == 0) {
          ec = make_error_code(error::short_body);
          break;
        }
        h.update(buf.data(), n);
        off += n;
      }
      out.push_back(h.hex_digest());
    }
    return out;
  }

  /// Syncs the partial file up to `offset` and digests the chunks not yet digested, on the
  /// syncer thread (the second core), while the download goes on.
  void start_sync(const std::shared_ptr<job>& jp, const std::shared_ptr<sync_state>& st, std::uint64_t offset) {
    st->busy = true;
    const auto chunk = jp->rec.checkpoint_bytes;
    const auto from = st->digests.size() * chunk;
    asio::post(syncer, [this, jp, st, offset, from, chunk, epoch = st->epoch, fd = st->fd.get()] {
      error_code ec;
      sync_data(fd, ec);
      std::vector<std::string> digests;
      if (!ec) digests = chunk_digests(fd, from, offset, chunk, ec);
      asio::post(ioc, [this, jp, st, offset, epoch, ec, digests = std::move(digests)]() mutable {
        synced(jp, st, offset, epoch, ec, std::move(digests));
      });
    });
  }

  void synced(const std::shared_ptr<job>& jp, const std::shared_ptr<sync_state>& st, std::uint64_t offset,
              std::uint64_t epoch, error_code ec, std::vector<std::string> digests) {
    st->busy = false;  // syncs run one at a time, in order: this was the one in flight
    if (st->waiter) st->waiter->cancel();
    auto& r = jp->rec;
    if (epoch == st->epoch) {  // else the data was reset or the run ended: it speaks for nothing
      if (ec) {
        st->error = ec;
        return;
      }
      st->digests.insert(st->digests.end(), digests.begin(), digests.end());
      if (offset > r.offset) {
        r.offset = offset;
        r.digests = st->digests;
        if (auto sec = save(r, true)) st->error = sec;
      }
    }
    if (st->next > 0 && !st->error) {
      const auto next = st->next;
      st->next = 0;
      start_sync(jp, st, next);
    }
  }

  void restart_from_zero(job& j, download_io& io, bool count) {
    auto& r = j.rec;
    ++io.sync->epoch;
    io.sync->digests.clear();
    io.sync->next = 0;
    if (::ftruncate(io.part.get(), 0) != 0) {
      // Truncation failing is reported by the next write; state stays consistent because the
      // record is reset before any new byte is recorded.
    }
    io.written = 0;
    io.whole = sha256{};
    r.offset = 0;
    r.digests.clear();
    r.etag.clear();
    r.last_modified.clear();
    r.content_encoding.clear();
    r.length.reset();
    if (count) ++r.restarts;
  }

  /// Opens the partial file, cuts it back to the checkpoint and re-verifies every recorded
  /// chunk; anything that does not match is discarded (from that chunk on).
  error_code restore(job& j, download_io& io) {
    auto& r = j.rec;
    error_code ec;
    io.part = open_file(part_path(r), O_RDWR | O_CREAT, ec, 0600);
    if (ec) return ec;
    if (::ftruncate(io.part.get(), static_cast<off_t>(r.offset)) != 0)
      return error_code(errno, boost::system::system_category());
    const auto chunk = r.checkpoint_bytes;
    std::uint64_t verified = 0;
    for (std::size_t i = 0; i < r.digests.size(); ++i) {
      const auto begin = i * chunk;
      const auto end = std::min<std::uint64_t>(begin + chunk, r.offset);
      sha256 h;
      std::optional<sha256> whole;  // the whole-file hash may only take this chunk if it verifies
      if (io.want_whole) whole.emplace(io.whole);
      for (auto off = begin; off < end;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(io.buf.size(), end - off));
        const auto n = read_some(io.part.get(), io.buf.data(), want, off, ec);
        if (ec) return ec;
        if (n == 0) break;
        h.update(io.buf.data(), n);
        if (whole) whole->update(io.buf.data(), n);
        off += n;
      }
      if (h.hex_digest() != r.digests[i]) {
        opts.log(net::log_level::warn, "transfer " + r.id + ": partial data differs from its checkpoint at chunk " +
                                           std::to_string(i) + "; fetching again from byte " + std::to_string(begin));
        break;
      }
      if (whole) io.whole = std::move(*whole);
      verified = end;
    }
    if (verified < r.offset) {
      r.offset = verified - verified % chunk;
      r.digests.resize(static_cast<std::size_t>(r.offset / chunk));
      // The whole-file hash covers `verified` bytes; recompute it up to the new offset.
      io.whole = sha256{};
      for (std::uint64_t off = 0; io.want_whole && off < r.offset;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(io.buf.size(), r.offset - off));
        const auto n = read_some(io.part.get(), io.buf.data(), want, off, ec);
        if (ec) return ec;
        io.whole.update(io.buf.data(), n);
        off += n;
      }
      if (::ftruncate(io.part.get(), static_cast<off_t>(r.offset)) != 0)
        return error_code(errno, boost::system::system_category());
      if (auto sec = save(r)) return sec;
    }
    io.written = r.offset;
    io.sync->digests = r.digests;
    io.sync->fd = file(::dup(io.part.get()));
    if (!io.sync->fd) return error_code(errno, boost::system::system_category());
    return {};
  }

  /// Appends body bytes: writes, hashes, and checkpoints at every chunk boundary (data synced
  /// first, then the record).
  error_code append(job& j, download_io& io, const char* data, std::size_t n) {
    auto& r = j.rec;
    if (io.sync->error) return io.sync->error;
    while (n > 0) {
      const auto to_boundary = r.checkpoint_bytes - io.written % r.checkpoint_bytes;
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(n, to_boundary));
      error_code ec;
      write_all(io.part.get(), data, take, io.written, ec);
      if (ec) return ec;
      if (io.want_whole) io.whole.update(data, take);
      io.written += take;
      r.bytes_received += take;
      data += take;
      n -= take;
      if (io.written % r.checkpoint_bytes == 0) {
        if (auto cec = checkpoint(j, io)) return cec;
      }
    }
    return {};
  }

  error_code checkpoint(job& j, download_io& io) {
    auto& r = j.rec;
    error_code ec;
    if (!r.length && opts.min_free_space) {
      // Unannounced length: never fill the disk; keep the reserve free.
      const auto avail = free_space(opts.state_dir, ec);
      if (!ec && avail < opts.min_free_space) return make_error_code(error::insufficient_space);
      ec = {};
    }
    auto jp = jobs.at(r.id);
    if (!io.sync->busy)
      start_sync(jp, io.sync, io.written);
    else
      io.sync->next = io.written;
    return {};
  }

  /// One GET (following redirects) from io.written on.
  asio::awaitable<attempt_end> download_attempt(job& j, download_io& io) {
    auto& r = j.rec;
    // Without a validator, bytes already held cannot be proven to belong to the content the
    // server has now (it may have changed in between); only a caller-supplied SHA-256 makes
    // continuing them safe. Otherwise: start over.
    if (io.written > 0 && r.etag.empty() && r.last_modified.empty() && r.sha256_expected.empty())
      restart_from_zero(j, io, true);
    auto first = net::parse_url(r.url);
    auto url = *first;
    for (std::uint32_t redirects = 0;; ++redirects) {
      std::optional<net::endpoint_url> next;
      auto end = co_await with_connection(j, url, [&](auto& stream, beast::tcp_stream& tcp) {
        return download_exchange(j, io, stream, tcp, url, same_origin(url, *first), next);
      });
      if (!next) co_return end;
      if (redirects + 1 > opts.max_redirects) {
        end.ec = make_error_code(error::too_many_redirects);
        end.message = "more than " + std::to_string(opts.max_redirects) + " redirects";
        co_return end;
      }
      url = *next;
      r.final_url = url.to_string();
    }
  }

  template <class Stream>
  asio::awaitable<attempt_end> download_exchange(job& j, download_io& io, Stream& stream, beast::tcp_stream& tcp,
                                                 const net::endpoint_url& url, bool origin,
                                                 std::optional<net::endpoint_url>& redirect) {
    auto& r = j.rec;
    attempt_end end;
    const std::string where = "GET " + url.redacted();
    const bool resume = io.written > 0;
    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    add_headers(req, url, r, origin);
    req.set(http::field::accept_encoding, "identity");
    if (resume) {
      req.set(http::field::range, "bytes=" + std::to_string(io.written) + "-");
      if (!r.etag.empty())
        req.set(http::field::if_range, r.etag);
      else if (!r.last_modified.empty())
        req.set(http::field::if_range, r.last_modified);
    }
    arm(j, tcp);
    auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
    if (wec) {
      end.ec = io_error(j, wec);
      end.message = where + ": " + end.ec.message();
      co_return end;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(opts.max_header_bytes);
    parser.body_limit(boost::none);
    arm(j, tcp);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, nothrow);
    if (hec) {
      end.ec = io_error(j, hec);
      if (end.ec == error::short_body) end.ec = asio::error::connection_reset;
      end.message = where + ": " + describe(hec, end.ec);
      co_return end;
    }
    auto& res = parser.get();
    end.status = res.result_int();
    const auto status_text = std::to_string(end.status) + " " + std::string(res.reason());

    if (end.status >= 300 && end.status < 400 && end.status != 304) {
      const auto location = field(res, http::field::location);
      auto target = net::resolve_url(url, location);
      if (location.empty() || !target) {
        end.ec = make_error_code(error::protocol_error);
        end.message = where + ": " + status_text + " without a usable Location";
        co_return end;
      }
      redirect = *target;
      co_return end;
    }
    if (end.status != 200 && end.status != 206 && end.status != 416) {
      end.retry_after = retry_after_of(res, std::chrono::hours{24 * 365});
      const auto o = net::classify_status(end.status);
      end.ec = make_error_code(o == outcome::rejected ? error::rejected
                               : o == outcome::retry_later ? error::retry_later
                                                           : error::protocol_error);
      end.message = where + ": " + status_text;
      co_return end;
    }

    const auto etag = field(res, http::field::etag);
    const auto last_modified = field(res, http::field::last_modified);
    const auto encoding = field(res, http::field::content_encoding);
    auto fail_range = [&](const std::string& why) {
      // Proof failed: what we hold cannot be continued from this response. Start over.
      restart_from_zero(j, io, true);
      end.ec = make_error_code(error::range_mismatch);
      end.message = where + ": " + why + "; starting over";
      return end;
    };
    if (!encoding.empty() && !boost::beast::iequals(encoding, "identity")) {
      // We asked for identity; a server that encodes anyway (e.g. a forced gzip) sends bytes
      // that are not the file. Never store them as if they were: fail loudly, keep what is durable.
      end.ec = make_error_code(error::encoded_content);
      end.message = where + ": the server sent the body with Content-Encoding: " + encoding +
                    " although the request accepted only identity; it is not saved as the file";
      co_return end;
    }
    if (end.status == 416) {
      co_return fail_range("416 for bytes from " + std::to_string(io.written));
    }
    if (end.status == 206) {
      const auto cr = net::parse_content_range(field(res, http::field::content_range));
      if (!resume || !cr || !cr->satisfied)
        co_return fail_range("206 with an unusable Content-Range");
      if (cr->first != io.written)
        co_return fail_range("206 starting at byte " + std::to_string(cr->first) + " instead of " +
                             std::to_string(io.written));
      if (!cr->complete_length || !r.length || *cr->complete_length != *r.length || cr->last + 1 != *r.length)
        co_return fail_range("206 for a different length");
      if (!r.etag.empty() && net::is_strong_etag(etag) && etag != r.etag)
        co_return fail_range("206 with another ETag");
      if (encoding != r.content_encoding) co_return fail_range("206 with another Content-Encoding");
    } else {
      // 200: the whole content from byte 0.
      if (resume) {
        opts.log(net::log_level::info, "transfer " + r.id + ": the server sent the whole content; starting over");
        restart_from_zero(j, io, true);
      }
      r.etag = net::is_strong_etag(etag) ? etag : std::string{};
      r.last_modified = last_modified;
      r.content_encoding = encoding;
      r.length.reset();
      if (auto n = parser.content_length()) r.length = *n;
      // At most ~1024 chunk digests per record, so that records stay small for huge files.
      r.checkpoint_bytes = opts.checkpoint_bytes;
      if (r.length && *r.length / 1024 > r.checkpoint_bytes)
        r.checkpoint_bytes = (*r.length / 1024 + (64u << 10) - 1) / (64u << 10) * (64u << 10);
      if (r.length && opts.max_download_bytes && *r.length > opts.max_download_bytes) {
        end.ec = make_error_code(error::too_large);
        end.message = where + ": Content-Length " + std::to_string(*r.length) + " is above the limit of " +
                      std::to_string(opts.max_download_bytes) + " bytes";
        co_return end;
      }
      if (r.length) {
        error_code sec;
        const auto need = *r.length;
        const auto avail = free_space(opts.state_dir, sec);
        if (!sec && avail < need) {
          end.ec = make_error_code(error::insufficient_space);
          end.message = "need " + std::to_string(need) + " bytes in the state directory, " +
                        std::to_string(avail) + " are free";
          co_return end;
        }
        if (opts.preallocate) {
          preallocate(io.part.get(), need, sec);
          if (sec) {
            end.ec = sec;
            end.message = "cannot reserve " + std::to_string(need) + " bytes: " + sec.message();
            co_return end;
          }
        }
      }
      if (auto sec = save(r)) {
        end.ec = sec;
        end.message = "cannot write the state record: " + sec.message();
        co_return end;
      }
    }

    // The body. An identity body (Content-Length or close-delimited) is read straight from the
    // stream into the large buffer; Beast's parser, which reads through a small buffer, only
    // handles chunked bodies.
    const auto start_written = io.written;
    // Takes `got` bytes at the front of io.buf: checks, writes, paces. Sets end on failure.
    auto take = [&](std::size_t got) -> asio::awaitable<bool> {
      if (r.length && io.written + got > *r.length) {
        end.ec = make_error_code(error::protocol_error);
        end.message = where + ": more body than announced";
        co_return false;
      }
      if (!r.length && opts.max_download_bytes && io.written + got > opts.max_download_bytes) {
        end.ec = make_error_code(error::too_large);
        end.message = where + ": a body of unannounced length went past the limit of " +
                      std::to_string(opts.max_download_bytes) + " bytes";
        co_return false;
      }
      if (auto aec = append(j, io, io.buf.data(), got)) {
        end.ec = aec;
        end.message = "writing " + part_path(r).filename().string() + ": " + aec.message();
        co_return false;
      }
      end.progressed = true;
      report(j, io.written);
      if ((j.rec.bandwidth_limit || opts.bandwidth_limit) && !co_await pace(j, got)) co_return false;
      // Bounded loss: never more than max_unsynced_bytes ahead of what is durable; wait for the syncer.
      const auto lag = std::max<std::uint64_t>(opts.max_unsynced_bytes, 2 * r.checkpoint_bytes);
      while (io.sync->busy && io.written - r.offset > lag && j.stop == stop_kind::none)
        co_await wait_until(j, steady::time_point::max(), &io.sync->waiter);
      if (io.sync->error) {
        end.ec = io.sync->error;
        end.message = "syncing " + part_path(r).filename().string() + ": " + end.ec.message();
        co_return false;
      }
      co_return j.stop == stop_kind::none;
    };
    auto failed = [&](error_code rec) {
      end.ec = io_error(j, rec);
      end.message = where + ": " + describe(rec, end.ec) + " after " + std::to_string(io.written - start_written) +
                    " body bytes";
    };
    if (!parser.is_done() && !parser.chunked()) {
      // What Beast read past the header first.
      if (const auto n = std::min(buffer.size(), io.buf.size()); n > 0) {
        asio::buffer_copy(asio::buffer(io.buf.data(), n), buffer.data());
        buffer.consume(n);
        if (!co_await take(r.length ? static_cast<std::size_t>(std::min<std::uint64_t>(n, *r.length - io.written)) : n)) {
          if (!end.ec) failed(asio::error::operation_aborted);
          co_return end;
        }
      }
      while (!r.length || io.written < *r.length) {
        auto want = r.length ? static_cast<std::size_t>(std::min<std::uint64_t>(io.buf.size(), *r.length - io.written))
                             : io.buf.size();
        if (const auto limit = pace_limit(j)) want = std::min<std::size_t>(want, std::max<std::uint64_t>(limit / 20, 4096));
        arm(j, tcp);
        auto [rec, got] = co_await stream.async_read_some(asio::buffer(io.buf.data(), want), nothrow);
        if (got > 0 && !co_await take(got)) {
          if (!end.ec) failed(asio::error::operation_aborted);
          co_return end;
        }
        if (rec) {
          const bool closed = rec == asio::error::eof || rec == asio::ssl::error::stream_truncated;
          if (!r.length && closed) break;  // a close-delimited body ends here
          failed(closed ? make_error_code(error::short_body) : rec);
          co_return end;
        }
      }
    } else {
      buffer.reserve(64u << 10);  // Beast reads at most 64 KiB at a time, and only this much
      while (!parser.is_done()) {
        auto& body = parser.get().body();
        body.data = io.buf.data();
        body.size = io.buf.size();
        arm(j, tcp);
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
        if (rec == http::error::need_buffer) rec = {};
        const auto got = io.buf.size() - parser.get().body().size;
        if (got > 0 && !co_await take(got)) {
          if (!end.ec) failed(asio::error::operation_aborted);
          co_return end;
        }
        if (rec) {
          failed(rec);
          co_return end;
        }
      }
    }
    if (!r.length) r.length = io.written;
    if (io.written != *r.length) {
      end.ec = make_error_code(error::short_body);
      end.message = where + ": body ended at byte " + std::to_string(io.written) + " of " + std::to_string(*r.length);
      co_return end;
    }
    end.complete = true;
    co_return end;
  }

  /// Syncs the last bytes, verifies, and moves the file into place.
  result finalize_download(job& j, download_io& io) {
    auto& r = j.rec;
    auto res = make_result(j);
    error_code ec;
    if (io.sync->error) ec = io.sync->error;
    if (!ec && r.offset != io.written) {
      ++io.sync->epoch;  // this synchronous sync covers whatever is still in flight
      sync_data(io.part.get(), ec);
      if (!ec) {
        // Digests of what the syncer has not digested yet, the last shorter chunk included.
        const auto from = io.sync->digests.size() * r.checkpoint_bytes;
        auto rest = chunk_digests(io.part.get(), from, io.written, r.checkpoint_bytes, ec);
        r.digests = io.sync->digests;
        r.digests.insert(r.digests.end(), rest.begin(), rest.end());
        r.offset = io.written;
        if (!ec) ec = save(r);
      }
    }
    res.bytes_on_disk = r.offset;
    res.bytes_received = r.bytes_received;
    res.bytes_expected = r.length;
    res.restarts = r.restarts;
    res.attempts = r.attempts;
    if (!ec) {
      if (io.want_whole) res.sha256 = io.whole.hex_digest();
      if (!r.sha256_expected.empty() && !equal_hex(res.sha256, r.sha256_expected)) {
        res.outcome = outcome::failed;
        res.error = make_error_code(error::integrity_mismatch);
        res.message = "SHA-256 of the content is " + res.sha256 + ", expected " + r.sha256_expected;
        return res;
      }
      io.part.close();
      move_into_place(part_path(r), r.file, ec);
      if (ec) {
        res.outcome = outcome::failed;
        res.error = ec;
        res.message = "cannot move the download into " + r.file + ": " + ec.message();
        return res;
      }
      res.outcome = outcome::success;
      return res;
    }
    res.outcome = outcome::failed;
    res.error = ec;
    res.message = "cannot sync the download: " + ec.message();
    return res;
  }

  asio::awaitable<result> run_download(std::shared_ptr<job> jp) {
    auto& j = *jp;
    auto& r = j.rec;
    download_io io;
    io.want_whole = !r.sha256_expected.empty() || opts.report_sha256;
    if (auto ec = restore(j, io)) {
      auto res = make_result(j);
      res.error = ec;
      res.message = "cannot open the partial data: " + ec.message();
      co_return res;
    }
    co_return co_await retry_loop(j, [&]() -> asio::awaitable<attempt_end> {
      if (r.length && io.written == *r.length && io.written > 0) {
        attempt_end done;
        done.complete = true;
        co_return done;
      }
      co_return co_await download_attempt(j, io);
    }, [&] { return finalize_download(j, io); });
  }

  /// Runs attempts until one completes, a failure is final, or the retry budget is spent.
  template <class Attempt, class Finalize>
  asio::awaitable<result> retry_loop(job& j, Attempt attempt, Finalize finalize) {
    auto& r = j.rec;
    net::backoff backoff(opts.retry);
    const auto started = steady::now();
    auto first_failure = started;
    for (;;) {
      if (j.stop != stop_kind::none) co_return make_result(j);
      if (steady::now() >= deadline_of(r)) {
        auto res = make_result(j);
        res.error = make_error_code(error::deadline_exceeded);
        res.message = "the transfer did not finish within its deadline";
        co_return res;
      }
      ++r.attempts;
      auto end = co_await attempt();
      j.interrupt = nullptr;
      if (j.stop != stop_kind::none) co_return make_result(j);
      if (end.complete) {
        auto done = finalize();
        done.http_status = end.status;
        co_return done;
      }
      auto res = make_result(j);
      res.http_status = end.status;
      res.error = end.ec;
      res.message = end.message;
      res.retry_after = end.retry_after;
      const auto o = end.ec == error::range_mismatch ? outcome::retry_later : net::classify_error(end.ec);
      if (o != outcome::retry_later) {
        res.outcome = o;
        co_return res;
      }
      if (end.progressed) {
        backoff.reset();
        first_failure = steady::now();
      }
      opts.log(net::log_level::info, "transfer " + r.id + ": " + end.message);
      auto delay = backoff.next(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - first_failure));
      const bool server_busy = end.status == 429 || end.status >= 500 || end.retry_after.has_value();
      if (!delay) {
        res.outcome = server_busy ? outcome::retry_later : outcome::failed;
        res.message = "gave up after " + std::to_string(r.attempts) + " attempts: " + end.message;
        if (!server_busy && end.ec.category() != tether::error_category()) res.error = make_error_code(error::retries_exhausted);
        co_return res;
      }
      if (end.retry_after) {
        if (*end.retry_after > opts.max_retry_after) {
          res.outcome = outcome::retry_later;
          r.earliest_start_ms = now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(*end.retry_after).count();
          co_return res;
        }
        delay = std::max<std::chrono::milliseconds>(*delay, *end.retry_after);
      }
      if (!co_await wait_until(j, steady::now() + *delay)) co_return make_result(j);
    }
  }

  // ---- uploads ------------------------------------------------------------------------------
  struct upload_io {
    file source;
    std::vector<char> buf = std::vector<char>(io_chunk);
    // tus: what the server offers (asked once per run with OPTIONS)
    bool probed = false, termination = false;
    std::optional<hash_algorithm> checksum;  ///< for Upload-Checksum, when the server offers one we know
    // Checkpoint-chunk digests of the bytes as they were sent (tus), so that acknowledging them
    // needs no second read of the source: `sent_digests[k]` is chunk `sent_first + k`.
    bool tracking = false;
    std::uint64_t sent_first = 0, sent_pos = 0;
    std::vector<std::string> sent_digests;
    hasher sent_hash;
  };

  /// Starts (or continues) hashing sent bytes at `begin`: tracking needs a checkpoint-aligned
  /// start or the exact continuation of what was hashed last.
  static void track_from(upload_io& io, std::uint64_t begin, std::uint64_t chunk) {
    if (io.tracking && begin == io.sent_pos) return;
    io.tracking = begin % chunk == 0;
    io.sent_first = begin / chunk;
    io.sent_pos = begin;
    io.sent_digests.clear();
    io.sent_hash = hasher{};
  }

  static void track_sent(upload_io& io, const record& r, const char* p, std::size_t n) {
    while (io.tracking && n > 0) {
      const auto take = static_cast<std::size_t>(
          std::min<std::uint64_t>(r.checkpoint_bytes - io.sent_pos % r.checkpoint_bytes, n));
      io.sent_hash.update(p, take);
      p += take;
      n -= take;
      io.sent_pos += take;
      if (io.sent_pos % r.checkpoint_bytes == 0 || io.sent_pos == r.source_size)
        io.sent_digests.push_back(io.sent_hash.hex_digest());
    }
  }

  static std::int64_t mtime_ns(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }

  /// The source must still be what it was when the upload began (size and mtime), and the
  /// prefix the server acknowledged must still hash to the recorded chunk digests.
  error_code check_source(job& j, upload_io& io, std::string& why) {
    auto& r = j.rec;
    struct stat st{};
    if (::fstat(io.source.get(), &st) != 0) return error_code(errno, boost::system::system_category());
    if (static_cast<std::uint64_t>(st.st_size) != r.source_size || mtime_ns(st) != r.source_mtime_ns) {
      why = "the source file changed since the upload began (size " + std::to_string(r.source_size) + " -> " +
            std::to_string(st.st_size) + ", or its modification time)";
      return make_error_code(error::source_changed);
    }
    error_code ec;
    const auto covered = std::min<std::uint64_t>(r.digests.size() * r.checkpoint_bytes, r.source_size);
    const auto now = chunk_digests(io.source.get(), 0, covered, r.checkpoint_bytes, ec);
    if (ec) return ec == error::short_body ? make_error_code(error::source_changed) : ec;
    for (std::size_t i = 0; i < r.digests.size(); ++i) {
      if (i >= now.size() || now[i] != r.digests[i]) {
        why = "the source file's content changed within the part already uploaded (chunk " + std::to_string(i) + ")";
        return make_error_code(error::source_changed);
      }
    }
    return {};
  }

  /// The digest of [begin, end) of the source; a source that got shorter is `source_changed`.
  static std::string hash_range(upload_io& io, std::uint64_t begin, std::uint64_t end, error_code& ec,
                                hash_algorithm alg = hash_algorithm::sha256) {
    if (begin >= end) return hasher(alg).hex_digest();
    auto digests = chunk_digests(io.source.get(), begin, end, end - begin, ec, alg);
    if (ec == error::short_body) ec = make_error_code(error::source_changed);
    return ec ? std::string{} : digests.front();
  }

  /// Records the acknowledged offset with digests for every chunk it completes.
  error_code acknowledge(job& j, upload_io& io, std::uint64_t offset) {
    auto& r = j.rec;
    // Moving forward, the previous record stays true if this one is lost in a crash (and a
    // resume asks the server anyway): no directory fsync needed.
    const bool forward = offset >= r.offset;
    if (offset < r.offset) {
      r.digests.resize(static_cast<std::size_t>(offset / r.checkpoint_bytes));
    }
    r.offset = offset;
    const auto full = offset == r.source_size ? (offset + r.checkpoint_bytes - 1) / r.checkpoint_bytes
                                              : offset / r.checkpoint_bytes;
    const std::uint64_t from = r.digests.size();
    if (from < full && io.tracking && from >= io.sent_first && full <= io.sent_first + io.sent_digests.size()) {
      // Hashed while sending: no second read.
      const auto first = io.sent_digests.begin() + static_cast<std::ptrdiff_t>(from - io.sent_first);
      r.digests.insert(r.digests.end(), first, first + static_cast<std::ptrdiff_t>(full - from));
      io.sent_digests.erase(io.sent_digests.begin(), first + static_cast<std::ptrdiff_t>(full - from));
      io.sent_first = full;
    } else if (from < full) {
      error_code ec;
      const auto more = chunk_digests(io.source.get(), from * r.checkpoint_bytes,
                                      std::min(full * r.checkpoint_bytes, r.source_size), r.checkpoint_bytes, ec);
      if (ec) return ec == error::short_body ? make_error_code(error::source_changed) : ec;
      r.digests.insert(r.digests.end(), more.begin(), more.end());
    }
    return save(r, forward);
  }

  /// Sends `[begin, end)` of the source after a request header; then reads the response.
  template <class Stream, class Request>
  asio::awaitable<attempt_end> send_with_body(job& j, upload_io& io, Stream& stream, beast::tcp_stream& tcp,
                                              Request& req, std::uint64_t begin, std::uint64_t end_off,
                                              const std::string& where, http::response<http::string_body>& out,
                                              sha256* hash, bool track = false) {
    attempt_end end;
    if (track) track_from(io, begin, j.rec.checkpoint_bytes);
    req.content_length(end_off - begin);
    http::request_serializer<http::empty_body> sr(req);
    arm(j, tcp);
    auto [wec, wn] = co_await http::async_write_header(stream, sr, nothrow);
    for (auto off = begin; !wec && off < end_off;) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(io.buf.size(), end_off - off));
      error_code rec;
      const auto n = read_some(io.source.get(), io.buf.data(), want, off, rec);
      if (rec || n == 0) {
        end.ec = rec ? rec : make_error_code(error::source_changed);
        end.message = "reading " + j.rec.file + ": " + (rec ? rec.message() : std::string("the file got shorter"));
        co_return end;
      }
      if (hash) hash->update(io.buf.data(), n);
      if (track) track_sent(io, j.rec, io.buf.data(), n);
      arm(j, tcp);
      auto buffer = asio::buffer(io.buf.data(), n);
      auto [e, m] = co_await asio::async_write(stream, buffer, nothrow);
      wec = e;
      off += m;
      j.rec.bytes_received += m;
      report(j, off);
      if (!wec && (j.rec.bandwidth_limit || opts.bandwidth_limit) && !co_await pace(j, m))
        wec = asio::error::operation_aborted;
      if (j.stop != stop_kind::none) wec = asio::error::operation_aborted;
    }
    if (wec) {
      end.ec = io_error(j, wec);
      end.message = where + ": " + end.ec.message();
      co_return end;
    }
    co_return co_await read_response(j, stream, tcp, where, out);
  }

  template <class Stream>
  asio::awaitable<attempt_end> read_response(job& j, Stream& stream, beast::tcp_stream& tcp, const std::string& where,
                                             http::response<http::string_body>& out, bool head = false) {
    attempt_end end;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(opts.max_header_bytes);
    parser.body_limit(64u << 10);
    parser.skip(head);  // a response to HEAD has no body, whatever its Content-Length says
    arm(j, tcp);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (rec) {
      end.ec = io_error(j, rec);
      if (end.ec == error::short_body) end.ec = asio::error::connection_reset;
      end.message = where + ": " + describe(rec, end.ec);
      co_return end;
    }
    out = parser.release();
    end.status = out.result_int();
    end.retry_after = retry_after_of(out, std::chrono::hours{24 * 365});
    co_return end;
  }

  static attempt_end status_failure(attempt_end end, const std::string& where, const http::response<http::string_body>& res) {
    const auto o = net::classify_status(end.status);
    end.ec = make_error_code(o == outcome::rejected ? error::rejected
                             : o == outcome::retry_later ? error::retry_later
                                                         : error::protocol_error);
    end.message = where + ": " + std::to_string(end.status) + " " + std::string(res.reason());
    return end;
  }

  /// One PUT/POST of the whole file.
  asio::awaitable<attempt_end> plain_upload_attempt(job& j, upload_io& io, std::string& digest) {
    auto& r = j.rec;
    auto url = *net::parse_url(r.url);
    if (r.bytes_received > 0) ++r.restarts;  // an earlier attempt sent bytes: this one starts over
    const auto verb = r.protocol == upload_protocol::post ? http::verb::post : http::verb::put;
    const std::string where = std::string(http::to_string(verb)) + " " + url.redacted();
    co_return co_await with_connection(j, url, [&](auto& stream, beast::tcp_stream& tcp) -> asio::awaitable<attempt_end> {
      http::request<http::empty_body> req{verb, url.target, 11};
      add_headers(req, url, r, true);
      if (req.find(http::field::content_type) == req.end()) req.set(http::field::content_type, "application/octet-stream");
      http::response<http::string_body> res;
      std::optional<sha256> hash;
      if (opts.report_sha256) hash.emplace();
      auto end = co_await send_with_body(j, io, stream, tcp, req, 0, r.source_size, where, res, hash ? &*hash : nullptr);
      if (end.ec) co_return end;
      if (end.status < 200 || end.status >= 300) co_return status_failure(end, where, res);
      if (hash) digest = hash->hex_digest();
      end.complete = true;
      co_return end;
    });
  }

  /// Runs one tus request on a connection of its own.
  asio::awaitable<attempt_end> tus_call(job& j, upload_io& io, http::verb verb, const net::endpoint_url& url,
                                        std::vector<std::pair<std::string, std::string>> fields,
                                        http::response<http::string_body>& res, std::uint64_t body_begin = 0,
                                        std::uint64_t body_end = 0) {
    const std::string where = std::string(http::to_string(verb)) + " " + url.redacted();
    co_return co_await with_connection(j, url, [&](auto& stream, beast::tcp_stream& tcp) -> asio::awaitable<attempt_end> {
      http::request<http::empty_body> req{verb, url.target, 11};
      add_headers(req, url, j.rec, true);
      req.set("Tus-Resumable", "1.0.0");
      for (auto& [k, v] : fields) req.set(k, v);
      if (verb == http::verb::patch)
        co_return co_await send_with_body(j, io, stream, tcp, req, body_begin, body_end, where, res, nullptr, true);
      if (verb == http::verb::post || verb == http::verb::delete_) req.content_length(0);
      arm(j, tcp);
      auto [wec, wn] = co_await http::async_write(stream, req, nothrow);
      if (wec) {
        attempt_end end;
        end.ec = io_error(j, wec);
        end.message = where + ": " + end.ec.message();
        co_return end;
      }
      co_return co_await read_response(j, stream, tcp, where, res, verb == http::verb::head);
    });
  }

  /// The comma-separated tokens of a header value, trimmed and lower-cased.
  static std::set<std::string> tokens(std::string_view v) {
    std::set<std::string> out;
    while (!v.empty()) {
      const auto comma = v.find(',');
      auto t = v.substr(0, comma);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
      std::string low(t);
      for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!low.empty()) out.insert(std::move(low));
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
    return out;
  }

  static std::string hex_to_base64(const std::string& hex) {
    std::string raw;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return net::detail::base64(raw);
  }

  static attempt_end failure(error_code ec, std::string message = {}) {
    attempt_end end;
    end.ec = ec;
    end.message = message.empty() ? ec.message() : std::move(message);
    return end;
  }

  /// Keeps the server's Upload-Expires (tus expiration extension), when it sent one.
  static void note_expiry(record& r, const http::response<http::string_body>& res) {
    const auto it = res.find("Upload-Expires");
    if (it == res.end()) return;
    if (const auto t = net::parse_http_date(it->value()))
      r.upload_expires_ms = std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
  }

  /// The server no longer has the upload: forget it and create a new one (reported).
  error_code forget_upload(job& j, const std::string& why) {
    auto& r = j.rec;
    opts.log(net::log_level::warn, "transfer " + r.id + ": " + why + "; starting a new upload");
    r.upload_url.clear();
    r.upload_expires_ms = 0;
    r.offset = 0;
    r.digests.clear();
    ++r.restarts;
    return save(r);
  }

  /// OPTIONS on the creation URL: which extensions and checksum algorithms the server offers.
  asio::awaitable<attempt_end> probe(job& j, upload_io& io) {
    http::response<http::string_body> res;
    const auto create = *net::parse_url(j.rec.url);
    std::vector<std::pair<std::string, std::string>> no_fields;  // named: see scripts/check_coawait.py
    auto end = co_await tus_call(j, io, http::verb::options, create, std::move(no_fields), res);
    if (end.ec) co_return end;
    io.probed = true;
    if (end.status >= 200 && end.status < 300) {
      const auto ext = tokens(res["Tus-Extension"]);
      const auto algs = tokens(res["Tus-Checksum-Algorithm"]);
      io.termination = ext.count("termination") > 0;
      io.checksum.reset();
      if (ext.count("checksum")) {
        if (algs.count("sha256")) io.checksum = hash_algorithm::sha256;
        else if (algs.count("sha1")) io.checksum = hash_algorithm::sha1;
      }
    }
    co_return end;
  }

  /// One tus session: (OPTIONS once,) POST if there is no upload yet (its URL recorded before
  /// any data moves), HEAD for the server's offset, then PATCHes until done or a failure.
  asio::awaitable<attempt_end> tus_attempt(job& j, upload_io& io) {
    auto& r = j.rec;
    const auto create = *net::parse_url(r.url);
    http::response<http::string_body> res;
    attempt_end end;
    if (!io.probed) {
      end = co_await probe(j, io);
      if (end.ec) co_return end;
    }
    for (int fresh = 0; fresh < 2; ++fresh) {
      if (!r.upload_url.empty() && r.upload_expires_ms != 0 && now_ms() >= r.upload_expires_ms) {
        // The server said it would drop the upload by now: appending to it is pointless.
        if (auto ec = forget_upload(j, "the upload expired on the server (Upload-Expires)")) co_return failure(ec);
      }
      if (r.upload_url.empty()) {
        const auto name = std::filesystem::path(r.file).filename().string();
        std::vector<std::pair<std::string, std::string>> creation{
            {"Upload-Length", std::to_string(r.source_size)},
            {"Upload-Metadata", "filename " + net::detail::base64(name)}};
        end = co_await tus_call(j, io, http::verb::post, create, std::move(creation), res);
        if (end.ec) co_return end;
        const std::string where = "POST " + create.redacted();
        if (end.status != 201) co_return status_failure(end, where, res);
        auto location = net::resolve_url(create, field(res, http::field::location));
        if (!location) {
          end.ec = make_error_code(error::protocol_error);
          end.message = where + ": 201 without a usable Location";
          co_return end;
        }
        r.upload_url = location->to_string();
        note_expiry(r, res);
        r.offset = 0;
        r.digests.clear();
        if (auto ec = save(r)) {
          end.ec = ec;
          end.message = "cannot write the state record: " + ec.message();
          co_return end;
        }
      }
      const auto upload = net::parse_url(r.upload_url);
      if (!upload) {
        if (auto ec = forget_upload(j, "the recorded upload URL does not parse")) co_return failure(ec);
        continue;
      }
      const std::string where_head = "HEAD " + upload->redacted();
      std::vector<std::pair<std::string, std::string>> no_fields;
      end = co_await tus_call(j, io, http::verb::head, *upload, std::move(no_fields), res);
      if (end.ec) co_return end;
      if (end.status == 404 || end.status == 410) {
        if (auto ec = forget_upload(j, "the server answered " + std::to_string(end.status) + " for the upload"))
          co_return failure(ec);
        continue;
      }
      if (end.status < 200 || end.status >= 300) co_return status_failure(end, where_head, res);
      const auto server_offset = net::parse_decimal(std::string(res["Upload-Offset"]));
      const auto server_length = res.find("Upload-Length") == res.end()
                                     ? std::optional<std::uint64_t>(r.source_size)
                                     : net::parse_decimal(std::string(res["Upload-Length"]));
      if (!server_offset || !server_length || *server_length != r.source_size || *server_offset > r.source_size) {
        end.ec = make_error_code(error::protocol_error);
        end.message = where_head + ": missing or inconsistent Upload-Offset / Upload-Length";
        co_return end;
      }
      if (auto ec = acknowledge(j, io, *server_offset)) co_return failure(ec);
      break;
    }
    if (r.upload_url.empty()) {
      end.ec = make_error_code(error::protocol_error);
      end.message = "the server lost the upload twice in a row";
      co_return end;
    }
    const auto upload = *net::parse_url(r.upload_url);
    const std::string where = "PATCH " + upload.redacted();
    const auto chunk = r.chunk_size ? r.chunk_size : opts.upload_chunk_size;
    while (r.offset < r.source_size) {
      const auto begin = r.offset;
      const auto stop = std::min(r.source_size, begin + chunk);
      std::vector<std::pair<std::string, std::string>> f = {
          {"Upload-Offset", std::to_string(begin)}, {"Content-Type", "application/offset+octet-stream"}};
      if (io.checksum) {
        error_code hec;
        const auto digest = hash_range(io, begin, stop, hec, *io.checksum);
        if (hec) co_return failure(hec, "reading " + r.file + ": " + hec.message());
        const char* name = *io.checksum == hash_algorithm::sha1 ? "sha1 " : "sha256 ";
        f.emplace_back("Upload-Checksum", name + hex_to_base64(digest));
      }
      end = co_await tus_call(j, io, http::verb::patch, upload, std::move(f), res, begin, stop);
      if (end.ec) co_return end;
      if (end.status == 404 || end.status == 410) {
        if (auto ec = forget_upload(j, "the server answered " + std::to_string(end.status) + " to a PATCH"))
          co_return failure(ec);
        end.ec = make_error_code(error::retry_later);
        end.message = where + ": the upload is gone";
        co_return end;
      }
      if (end.status == 409 || end.status == 423 || end.status == 460) {
        // Offset mismatch, a lock held by a dead earlier request, or a checksum mismatch: ask
        // the server again (HEAD on the next attempt) and resend from its offset, with backoff.
        end.ec = make_error_code(error::retry_later);
        end.message = where + ": " + std::to_string(end.status) + " " + std::string(res.reason());
        co_return end;
      }
      if (end.status < 200 || end.status >= 300) co_return status_failure(end, where, res);
      const auto now_at = net::parse_decimal(std::string(res["Upload-Offset"]));
      if (!now_at || *now_at <= begin || *now_at > stop) {
        end.ec = make_error_code(error::protocol_error);
        end.message = where + ": missing or impossible Upload-Offset in the answer";
        co_return end;
      }
      note_expiry(r, res);
      if (auto ec = acknowledge(j, io, *now_at)) co_return failure(ec);
      end.progressed = true;
    }
    end.ec = {};
    end.retry_after.reset();
    end.complete = true;
    co_return end;
  }

  /// tus termination: asks the server to delete the upload when it offers termination (asking
  /// it first if this run has not), best effort, bounded by the connection timeouts.
  asio::awaitable<void> terminate_upload(job& j, upload_io& io) {
    const auto upload = net::parse_url(j.rec.upload_url);
    if (!upload) co_return;
    const auto stop = std::exchange(j.stop, stop_kind::none);  // the cancel must not stop these requests
    if (!io.probed) co_await probe(j, io);
    if (io.termination) {
      http::response<http::string_body> res;
      std::vector<std::pair<std::string, std::string>> no_fields;
      co_await tus_call(j, io, http::verb::delete_, *upload, std::move(no_fields), res);
    }
    j.stop = stop;
  }

  asio::awaitable<result> run_upload(std::shared_ptr<job> jp) {
    auto& j = *jp;
    auto& r = j.rec;
    upload_io io;
    error_code ec;
    io.source = open_file(r.file, O_RDONLY, ec);
    std::string why;
    if (!ec) ec = check_source(j, io, why);
    if (!ec && !r.sha256_expected.empty()) {
      // The caller said what the source must be: check before any byte leaves.
      const auto actual = hash_range(io, 0, r.source_size, ec);
      if (!ec && !equal_hex(actual, r.sha256_expected)) {
        ec = make_error_code(error::source_changed);
        why = "the SHA-256 of " + r.file + " is " + actual + ", expected " + r.sha256_expected;
      }
    }
    if (ec) {
      auto res = make_result(j);
      res.error = ec;
      res.message = why.empty() ? "cannot read " + r.file + ": " + ec.message() : why;
      co_return res;
    }
    r.length = r.source_size;
    std::string digest;
    if (r.protocol != upload_protocol::tus) {
      co_return co_await retry_loop(j, [&] { return plain_upload_attempt(j, io, digest); }, [&] {
        auto res = make_result(j);
        res.outcome = outcome::success;
        res.sha256 = r.sha256_expected.empty() ? digest : r.sha256_expected;
        res.bytes_on_disk = r.offset = r.source_size;
        return res;
      });
    }
    auto res = co_await retry_loop(j, [&] { return tus_attempt(j, io); }, [&] {
      auto done = make_result(j);
      done.outcome = outcome::success;
      error_code hec;
      if (!r.sha256_expected.empty()) done.sha256 = r.sha256_expected;
      else if (opts.report_sha256) done.sha256 = hash_range(io, 0, r.source_size, hec);
      return done;
    });
    if (j.stop == stop_kind::cancel && io.termination && !r.upload_url.empty()) co_await terminate_upload(j, io);
    co_return res;
  }
};

}  // namespace tether::transfer::detail

namespace tether::transfer::detail {

namespace {

/// Runs `f` on the manager's thread and waits for its answer (inline when already there).
template <class F>
auto on_manager_thread(manager_impl& m, F f) -> decltype(f()) {
  if (m.ioc.get_executor().running_in_this_thread() || !m.thread.joinable()) return f();
  std::packaged_task<decltype(f())()> task(std::move(f));
  auto fut = task.get_future();
  asio::post(m.ioc, [&task] { task(); });
  return fut.get();
}

result invalid(std::string id, kind k, std::string message, error e = error::invalid_argument) {
  result r;
  r.id = std::move(id);
  r.kind = k;
  r.outcome = outcome::failed;
  r.error = make_error_code(e);
  r.message = std::move(message);
  return r;
}

/// Checks a new request and builds its record (nothing touches the disk yet).
std::optional<result> validate(const manager_impl& m, kind k, request& req, const std::string& id, record& rec) {
  auto fail = [&](std::string why, error e = error::invalid_argument) { return invalid(id, k, std::move(why), e); };
  if (id.empty()) return fail("the transfer id is empty");
  auto url = net::parse_url(req.url);
  if (!url) {
    auto r = fail("the URL does not parse: " + url.error().message());
    r.error = url.error();
    return r;
  }
  if (url->scheme != net::scheme::http && url->scheme != net::scheme::https)
    return fail("transfers speak http and https only", error::unsupported_scheme);
  if (req.file.empty()) return fail(k == kind::download ? "no destination file" : "no source file");
  std::error_code fec;
  auto path = std::filesystem::absolute(req.file, fec).lexically_normal();
  if (fec) return fail("bad file path: " + fec.message());
  if (!req.sha256.empty() && !is_sha256_hex(req.sha256)) return fail("--sha256 is not 64 hex digits");
  for (const auto& [name, value] : req.headers) {
    const auto bad = [](const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; };
    if (name.empty() || bad(name) || bad(value)) return fail("a request header has an empty name or a line break");
  }
  rec.id = id;
  rec.kind = k;
  rec.url = req.url;
  rec.file = path.string();
  rec.headers = req.headers;
  rec.sha256_expected = req.sha256;
  rec.protocol = req.protocol;
  rec.chunk_size = req.chunk_size;
  rec.bandwidth_limit = req.bandwidth_limit;
  rec.earliest_start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(req.earliest_start.time_since_epoch()).count();
  rec.checkpoint_bytes = m.opts.checkpoint_bytes;
  rec.created_ms = now_ms();
  if (k == kind::download) {
    if (!std::filesystem::is_directory(path.parent_path(), fec))
      return fail("the destination's directory " + path.parent_path().string() + " does not exist");
    if (std::filesystem::is_directory(path, fec)) return fail("the destination " + path.string() + " is a directory");
  } else {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return fail("the source " + path.string() + " is not a readable regular file");
    rec.source_size = static_cast<std::uint64_t>(st.st_size);
    rec.source_mtime_ns = manager_impl::mtime_ns(st);
    rec.length = rec.source_size;
    if (req.protocol == upload_protocol::tus && req.chunk_size == 0 && m.opts.upload_chunk_size == 0)
      return fail("the tus chunk size is zero");
  }
  return std::nullopt;
}

}  // namespace

std::shared_ptr<manager_impl> open_manager(asio::any_io_executor ex, options opts) {
  const auto dir = opts.state_dir.string();
  auto fail = [&dir](error_code ec, const std::string& what) {
    throw boost::system::system_error(ec, "transfer state directory " + dir + ": " + what);
  };
  if (opts.state_dir.empty()) fail(make_error_code(error::invalid_argument), "not set");
  if (opts.max_concurrent == 0) fail(make_error_code(error::invalid_argument), "max_concurrent is 0");
  if (opts.checkpoint_bytes < (64u << 10) || opts.checkpoint_bytes % (64u << 10) != 0)
    fail(make_error_code(error::invalid_argument), "checkpoint_bytes must be a multiple of 64 KiB");
  auto m = std::make_shared<manager_impl>();
  m->user_ex = std::move(ex);
  std::error_code sec;
  std::filesystem::create_directories(opts.state_dir, sec);
  if (sec) fail(error_code(sec.value(), boost::system::system_category()), "cannot create it");
  opts.state_dir = std::filesystem::absolute(opts.state_dir);
  m->opts = std::move(opts);
  error_code ec;
  m->lock = lock_directory(m->opts.state_dir, ec);
  if (ec) fail(ec, ec == error::state_locked ? "another process is using it" : "cannot lock it");
  auto ctx = net::detail::make_client_context(m->opts.tls);
  if (!ctx) fail(ctx.error(), "TLS settings");
  m->tls = *ctx;
  m->load();
  m->work.emplace(m->ioc.get_executor());
  m->thread = std::thread([raw = m.get()] { raw->ioc.run(); });
  return m;
}

void start_transfer(const std::shared_ptr<manager_impl>& m, kind k, request req, std::string id, result_handler h) {
  asio::post(m->ioc, [m, k, req = std::move(req), id = std::move(id), h = std::move(h)]() mutable {
    auto reply = [&](result r) {
      auto ex = m->tracked_executor(h);
      manager_impl::post_result(std::move(h), ex, std::move(r));
    };
    if (m->stopping) return reply(invalid(id, k, "the transfer manager is shutting down", error::cancelled));
    record fresh;
    if (auto bad = validate(*m, k, req, id, fresh)) return reply(std::move(*bad));
    if (m->unreadable.count(file_stem(id)))
      return reply(invalid(id, k, "the record of " + id + " could not be read when the manager opened; it is left as it is: open the directory again to retry",
                           error::state_corrupt));
    if (auto it = m->jobs.find(id); it != m->jobs.end()) {
      auto j = it->second;
      auto& r = j->rec;
      if (r.kind != k || r.url != fresh.url || r.file != fresh.file)
        return reply(invalid(id, k, "the id " + id + " already names a transfer of another URL or file"));
      if (r.result) {
        // Finished: the same result again; the work is never redone.
        if (!r.result_delivered) {
          r.result_delivered = true;
          m->save(r);
        }
        return reply(*r.result);
      }
      m->add_waiter(*j, std::move(h));
      if (r.status == status::paused) r.earliest_start_ms = 0;
      m->enqueue(j);
      return;
    }
    auto j = std::make_shared<job>();
    j->rec = std::move(fresh);
    m->jobs[id] = j;
    m->add_waiter(*j, std::move(h));
    m->enqueue(j);  // writes the record before anything moves
  });
}

void start_resume_all(const std::shared_ptr<manager_impl>& m, results_handler h) {
  asio::post(m->ioc, [m, h = std::move(h)]() mutable {
    struct gather {
      std::vector<result> results;
      std::size_t left = 0;
      std::optional<results_handler> handler;
      asio::any_completion_executor ex;
    };
    auto g = std::make_shared<gather>();
    g->ex = m->tracked_executor(h);
    g->handler.emplace(std::move(h));
    auto done = [g] { manager_impl::post_result(std::move(*g->handler), g->ex, std::move(g->results)); };
    std::vector<std::shared_ptr<job>> todo;
    for (auto& [id, j] : m->jobs) {
      if (j->rec.result) {
        if (!j->rec.result_delivered) {
          j->rec.result_delivered = true;
          m->save(j->rec);
          // A cancel is the user's own decision, already answered where it was made: it is not
          // a result anyone waits for, and never comes back as a failure.
          if (j->rec.result->error != error::cancelled) g->results.push_back(*j->rec.result);
        }
        continue;
      }
      if (j->rec.status != status::paused) todo.push_back(j);
    }
    g->left = todo.size();
    if (todo.empty()) return done();
    for (auto& j : todo) {
      result_handler one = [g, done](result r) {
        g->results.push_back(std::move(r));
        if (--g->left == 0) done();
      };
      // The gathering handler runs on the manager's thread (it has no executor of its own).
      j->waiters.push_back(waiter{std::move(one), asio::any_completion_executor(m->ioc.get_executor())});
      m->enqueue(j);
    }
  });
}

std::vector<info> list(manager_impl& m) {
  std::lock_guard lk(m.info_mu);
  std::vector<info> out;
  for (auto& [id, i] : m.infos) out.push_back(i);
  out.insert(out.end(), m.problems.begin(), m.problems.end());
  std::sort(out.begin(), out.end(), [](const info& a, const info& b) { return a.id < b.id; });
  return out;
}

namespace {
error_code stop_job(manager_impl& m, const std::string& id, stop_kind how) {
  return on_manager_thread(m, [&]() -> error_code {
    auto it = m.jobs.find(id);
    if (it == m.jobs.end()) return make_error_code(error::not_found);
    auto j = it->second;
    if (j->running) {
      j->stop = how;
      if (j->interrupt) j->interrupt();
      return {};
    }
    // Not running: settle it here.
    if (j->queued) {
      m.pending.erase(std::remove(m.pending.begin(), m.pending.end(), j), m.pending.end());
      j->queued = false;
    }
    if (how == stop_kind::remove) {
      m.forget(j->rec);
      j->stop = how;
      m.finish(j, m.make_result(*j));  // tells any waiter
      m.jobs.erase(id);
      return {};
    }
    if (j->rec.result) return how == stop_kind::pause ? make_error_code(error::invalid_argument) : error_code{};
    j->stop = how;
    const auto& r = j->rec;
    if (how == stop_kind::cancel && r.kind == kind::upload && r.protocol == upload_protocol::tus &&
        !r.upload_url.empty() && !m.stopping) {
      // The server holds a partial upload: terminate it there too, then settle.
      j->running = true;
      ++m.running;
      asio::co_spawn(m.ioc, m.run_job(j), asio::detached);
      return {};
    }
    m.finish(j, m.make_result(*j));
    return {};
  });
}
}  // namespace

error_code cancel(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::cancel); }
error_code pause(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::pause); }
error_code remove(manager_impl& m, const std::string& id) { return stop_job(m, id, stop_kind::remove); }

std::size_t prune(manager_impl& m, std::chrono::system_clock::duration older_than) {
  return on_manager_thread(m, [&] {
    std::size_t removed = 0;
    const auto cutoff = now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(older_than).count();
    std::vector<std::string> gone;
    for (auto& [id, j] : m.jobs) {
      const auto& r = j->rec;
      const bool ended = r.status == status::succeeded || r.status == status::failed || r.status == status::cancelled;
      if (ended && !j->running && r.updated_ms <= cutoff) {
        m.forget(r);
        gone.push_back(id);
        ++removed;
      }
    }
    for (auto& id : gone) m.jobs.erase(id);
    // Stray files: partial data without a record, temp files, old set-aside records.
    std::set<std::string> live;
    for (auto& [id, j] : m.jobs) live.insert(file_stem(id));
    const auto file_cutoff = std::filesystem::file_time_type::clock::now() - older_than;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(m.opts.state_dir, ec)) {
      const auto& p = entry.path();
      const auto name = p.filename().string();
      if (name == "lock") continue;
      const bool temp = name.find(".tmp-") != std::string::npos;
      const bool corrupt = name.find(".corrupt") != std::string::npos;
      // Partial data is orphaned only when no record of any kind (readable or not) names it.
      std::error_code jec;
      const bool orphan = p.extension() == ".part" && !live.count(p.stem().string()) &&
                          !std::filesystem::exists(m.opts.state_dir / (p.stem().string() + ".json"), jec);
      if (!(temp || corrupt || orphan)) continue;
      std::error_code tec;
      if (std::filesystem::last_write_time(p, tec) > file_cutoff || tec) continue;
      if (std::filesystem::remove(p, tec)) ++removed;
      if (corrupt) {
        std::lock_guard lk(m.info_mu);
        std::erase_if(m.problems, [&](const info& i) { return i.file == p; });
      }
    }
    return removed;
  });
}

void shutdown(manager_impl& m) {
  if (!m.thread.joinable()) return;
  asio::post(m.ioc, [&m] {
    m.stopping = true;
    for (auto& j : m.pending) {
      j->queued = false;
      j->stop = stop_kind::shutdown;
      m.finish(j, m.make_result(*j));
    }
    m.pending.clear();
    for (auto& [id, j] : m.jobs)
      if (j->running) {
        j->stop = stop_kind::shutdown;
        if (j->interrupt) j->interrupt();
      }
    if (m.running == 0) m.work.reset();
  });
  m.thread.join();
  m.syncer.join();
}

asio::any_io_executor get_executor(const manager_impl& m) noexcept { return m.user_ex; }

}  // namespace tether::transfer::detail
