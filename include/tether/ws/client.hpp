// tether/ws/client.hpp: the WebSocket client: one long-running `run` that connects, keeps alive
// and reconnects, while the application sends and pulls events concurrently.
#pragma once

#include <tether/ws/detail/erased_handler.hpp>
#include <tether/ws/events.hpp>
#include <tether/ws/options.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>

namespace tether::ws {

namespace asio = boost::asio;

namespace detail {
struct client_impl;
struct client_access;  // a seam for tests and fuzzers that compile the implementation in
using void_handler = asio::any_completion_handler<void(error_code)>;
// The hot paths' handlers (one per message) keep their executor beside them.
using event_handler = erased_handler<void(error_code, event)>;
using send_handler = erased_handler<void(error_code)>;
TETHER_DECL std::shared_ptr<client_impl> make_client_impl(const asio::any_io_executor& ex, options opts);
TETHER_DECL void start_run(const std::shared_ptr<client_impl>& impl, void_handler h);
TETHER_DECL void start_next_event(const std::shared_ptr<client_impl>& impl, event_handler h);
TETHER_DECL void start_send(const std::shared_ptr<client_impl>& impl, message m,
                            std::chrono::steady_clock::duration ttl, send_handler h);
TETHER_DECL void start_ping(const std::shared_ptr<client_impl>& impl, std::string payload,
                            void_handler h);
TETHER_DECL void start_close(const std::shared_ptr<client_impl>& impl, close_reason r,
                             void_handler h);
TETHER_DECL connection_state get_state(const client_impl& impl) noexcept;
TETHER_DECL std::optional<std::chrono::microseconds> get_rtt(const client_impl& impl) noexcept;
TETHER_DECL const options& get_options(const client_impl& impl) noexcept;
TETHER_DECL asio::any_io_executor get_executor(const client_impl& impl) noexcept;
}  // namespace detail

/** A WebSocket client that stays connected.

    Life: construct with an executor and options, start `async_run` once (it connects, keeps
    the connection alive with pings, and reconnects with backoff until the client is closed or
    a failure the policy will not retry), and meanwhile `async_send` and `async_next_event`
    from any thread or coroutine. The connection's state lives on an internal strand; the two
    queues the application touches (events and the outbox) are guarded by a mutex, so sending
    and taking an event do not hop through the strand. No strand of its own when the executor
    given serializes everything already: a strand of an io_context (the connection lives on
    it), or the executor of an io_context constructed with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO
    (or _UNSAFE), the application's promise to Asio that one thread at a time runs it, which
    the client then relies on as Asio does. With _UNSAFE_IO, sends and closes from other threads
    stay safe (they are posted to the io_context); with _UNSAFE, Asio's own rule applies to them
    too: one thread at a time.

    Completions run on the handler's associated executor (the client's strand when it has none,
    so such handlers never run at the same time as one another), never inside the initiating
    call. A message that arrives while the application waits is handed over with that
    executor's dispatch, so on a single-threaded io_context its handler runs in the same turn
    of the event loop as the socket read; so are the `connected` event (in the handshake's
    turn) and the completions of sends (in the turn after their write, once it is on the
    socket). An event handler run inline that throws (a message's, `connected`'s) ends
    `async_run` with an error; any other handler's exception, a send's included, is thrown out
    of the event loop's run().

    Throughput: messages already received are read without an asynchronous operation each,
    and one whose head has arrived waits for its rest the same way (up to half of
    `read_buffer_size`, or a text one up to all of it, gathered in memory; a larger binary one,
    up to 16 times that, read straight into its own string); small messages queued meanwhile
    are framed into one socket write, sent at once with a non-blocking send on plain TCP (only
    what the socket does not take waits for it to drain).
    The writer waits for the application to finish its turn (taking queued events, queueing
    answers) before it writes, at most 64 turns of the event loop or `write_coalesce_bytes`,
    and after each write for one turn, in which the next messages gather. Over TLS (without
    compression) a write of 16 KiB or more takes whole TLS records; the few bytes beyond go
    with the next write, at most a turn later, so that no record of a few bytes costs a socket
    write of its own (a send whose frame ends there completes with that write).

    Reconnection: each failed attempt or lost connection is reported as `reconnecting` before
    the wait; the backoff starts over only once a connection has stayed open for
    `reconnect_policy::stable_after`. Failures a retry cannot fix (TLS verification, handshake
    4xx other than 408/429, close 1008, subprotocol/extension mismatch) end `run` with that
    error unless `retry_fatal`. A 429/503 with Retry-After is retried no earlier than asked
    (bounded by `max_retry_after`).

    Outbox: every send is queued (bounded by `outbox_max_messages` / `outbox_max_bytes`) and
    written in order by one writer; while disconnected the queue waits for the next handshake
    and is written before any newer send. A send completes when its frame has been written to
    the socket; with an error if the queue is full (`outbox_full`), its time to live passed
    (`expired`), the connection died while writing it (the socket's error), or the client was
    closed (`operation_aborted`). Delivery boundary: WebSocket has no receipts; a frame written
    to a socket that then dies may or may not have reached the peer. Use envelopes with
    acknowledgements for at-least-once delivery.

    Thread safety: distinct objects: safe; shared object: every member is safe to call
    concurrently. At most one `async_next_event` may be pending (a second fails with `busy`).
*/
class client {
 public:
  using executor_type = asio::any_io_executor;

  client(const executor_type& ex, options opts) : impl_(detail::make_client_impl(ex, std::move(opts))) {}
  /// Closes the client (code 1001): `run` completes and pending sends fail.
  ~client() {
    if (impl_) detail::start_close(impl_, {1001, "going away"}, {});
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  client(client&&) noexcept = default;
  client& operator=(client&&) noexcept = delete;

  executor_type get_executor() const noexcept { return detail::get_executor(*impl_); }
  const options& get_options() const noexcept { return detail::get_options(*impl_); }

  /// Runs the connection until close() or a failure that will not be retried.
  /// Completion: `void(error_code)`; empty after close() or a server's normal close when
  /// reconnection is off; otherwise what ended it (e.g. `handshake_rejected`,
  /// `retries_exhausted`, a TLS verification error). Start it once (again: `busy`).
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_run(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_](auto h) { detail::start_run(impl, std::move(h)); }, token);
  }

  /// The next event. Completion: `void(error_code, event)`; `client_closed` once the client
  /// has ended and every queued event was delivered. Cancel: close().
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code, event)) Token = asio::deferred_t>
  auto async_next_event(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code, event)>(
        [impl = impl_](auto h) {
          detail::start_next_event(impl, detail::erase_handler<void(error_code, event)>(std::move(h)));
        },
        token);
  }
  /// `co_await client.next_event()` in an asio::awaitable coroutine (throws on error).
  auto next_event() { return async_next_event(asio::deferred); }

  /// Queues a message; completes when it is written to the socket (see the class notes).
  /// Completion: `void(error_code)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_send(message m, Token&& token = {}) {
    return async_send(std::move(m), std::chrono::steady_clock::duration::zero(),
                      std::forward<Token>(token));
  }
  /// As above, failing with `expired` if it could not be written within `ttl` (zero: no expiry).
  /// With asio::detached no completion is kept or run at all (what happens to the message is
  /// then only seen in the events: it stays queued across reconnects until written, expired or
  /// the client ends).
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_send(message m, std::chrono::steady_clock::duration ttl, Token&& token = {}) {
    if constexpr (std::is_same_v<std::decay_t<Token>, asio::detached_t>) {
      detail::start_send(impl_, std::move(m), ttl, {});
    } else {
      return asio::async_initiate<Token, void(error_code)>(
          [impl = impl_, ttl](auto h, message msg) {  // NOLINT(performance-unnecessary-value-param): moved from
            detail::start_send(impl, std::move(msg), ttl, detail::erase_handler<void(error_code)>(std::move(h)));
          },
          token, std::move(m));
    }
  }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_send_text(std::string s, Token&& token = {}) {
    return async_send(message::text(std::move(s)), std::forward<Token>(token));
  }
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_send_binary(std::string s, Token&& token = {}) {
    return async_send(message::binary(std::move(s)), std::forward<Token>(token));
  }

  /// Sends a ping with `payload` (at most 125 bytes) now; completes when written. The pong is
  /// reported as a `pong` event (with options::pong_events) and in last_rtt().
  /// Errors: `invalid_argument` (payload too long), `not_connected` while no connection is open.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_ping(std::string payload, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_](auto h, std::string p) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::start_ping(impl, std::move(p), std::move(h));
        },
        token, std::move(payload));
  }

  /// Closes intentionally: stops reconnection at once (also during a backoff wait), sends a
  /// close frame with `reason` if connected and waits for the peer's (bounded by
  /// close_timeout), fails queued sends with `operation_aborted`. Completes when `run` has
  /// ended. Completion: `void(error_code)`.
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_close(close_reason reason, Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_](auto h, close_reason r) {  // NOLINT(performance-unnecessary-value-param): moved from
          detail::start_close(impl, std::move(r), std::move(h));
        },
        token, std::move(reason));
  }
  /// As above with a normal close (1000, no reason text). Under GCC 12 prefer this, or a named
  /// close_reason, to a braced `{...}` argument inside a co_await expression (see README).
  template <BOOST_ASIO_COMPLETION_TOKEN_FOR(void(error_code)) Token = asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return asio::async_initiate<Token, void(error_code)>(
        [impl = impl_](auto h) { detail::start_close(impl, close_reason{}, std::move(h)); }, token);
  }
  /// Fire-and-forget close().
  void close(std::uint16_t code = 1000, std::string reason = {}) {
    detail::start_close(impl_, {code, std::move(reason)}, {});
  }

  /// The current state; safe from any thread.
  connection_state state() const noexcept { return detail::get_state(*impl_); }
  /// Round-trip time measured by the latest pong, if any.
  std::optional<std::chrono::microseconds> last_rtt() const noexcept { return detail::get_rtt(*impl_); }

 private:
  friend struct detail::client_access;
  std::shared_ptr<detail::client_impl> impl_;
};

}  // namespace tether::ws
