// tether/transfer/impl/run_context.ipp: a run's waits, pacing, progress and deadline.
#pragma once

#include <tether/transfer/detail/run_context.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tether::transfer::detail {

std::string_view kind_label(kind k) noexcept {
  return k == kind::download ? std::string_view{"kind=\"download\""} : std::string_view{"kind=\"upload\""};
}

result result_of(const record& r) {
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
  res.connections_opened = r.connections_opened;
  res.connections_reused = r.connections_reused;
  res.tls_resumed = r.tls_resumed;
  if (!r.upload_url.empty()) res.location = redacted_url(r.upload_url);
  return res;
}

asio::awaitable<bool> run_context::wait_until(steady::time_point until, asio::steady_timer** waker) {
  if (until <= steady::now()) co_return !stopped();
  asio::steady_timer t(ioc, until);
  auto outer = std::exchange(j.interrupt, [&t] { t.cancel(); });
  if (waker) *waker = &t;
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  if (waker) *waker = nullptr;
  j.interrupt = std::move(outer);  // what the caller was waiting on, if anything
  co_return !stopped();
}

steady::time_point run_context::pace_until(std::uint64_t n) {
  const auto now = steady::now();
  const auto a = j.pace.reserve(r.bandwidth_limit, n, now);
  const auto b = global_pace_.reserve(opts.bandwidth_limit, n, now);
  return std::min(std::max(a, b), deadline());
}

asio::awaitable<bool> run_context::pace(std::uint64_t n) { co_return co_await wait_until(pace_until(n)); }

void run_context::report(std::uint64_t done, bool force) {
  const auto now = steady::now();
  j.rate.update(done, now);
  if (!opts.on_progress) return;
  if (!force && now - j.progress_at < opts.progress_interval) return;
  j.progress_at = now;
  progress p;
  p.id = r.id;
  p.kind = r.kind;
  p.bytes_done = done;
  p.bytes_durable = r.offset;
  p.bytes_total = r.length;
  p.bytes_per_second = j.rate.rate();
  p.eta = j.rate.eta(done, r.length);
  try {
    opts.on_progress(p);
  } catch (...) {
    // A throwing observer must not break the transfer.
  }
}

void run_context::moved(std::uint64_t n) const {
  if (opts.metrics) opts.metrics->count(net::metric::transfer_bytes, kind_label(r.kind), n);
}

void run_context::notify_retry(const attempt_end& end, std::chrono::milliseconds delay) {
  if (opts.metrics) opts.metrics->count(net::metric::transfer_retries, {}, 1);
  if (!opts.on_retry) return;
  retry_notice n;
  n.id = r.id;
  n.kind = r.kind;
  n.attempt = r.attempts;
  n.delay = delay;
  n.error = end.ec;
  n.message = end.message.empty() ? end.ec.message() : end.message;
  n.http_status = end.status;
  try {
    opts.on_retry(n);
  } catch (...) {
    // A throwing observer must not break the transfer.
  }
}

steady::time_point run_context::deadline() const {
  if (opts.resource_deadline.count() == 0) return steady::time_point::max();
  const auto created = std::chrono::system_clock::time_point{std::chrono::milliseconds{r.created_ms}};
  const auto left = created + opts.resource_deadline - std::chrono::system_clock::now();
  return steady::now() + std::chrono::duration_cast<steady::duration>(left);
}

}  // namespace tether::transfer::detail
