// tether/ws/envelope.hpp: typed JSON envelopes over ws::client: {"type", "payload", "id",
// "reply_to"}, handlers per type, request/response, and bounded, exception-free decoding.
#pragma once

#include <tether/ws/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tether::ws {

/// A message type names its wire type and converts with nlohmann's to_json/from_json:
///   struct chat_message { static constexpr std::string_view type = "chat.message"; ... };
template <class T>
concept envelope_message = requires {
  { T::type } -> std::convertible_to<std::string_view>;
} && requires(const T& t, nlohmann::json& j) { j = t; };

/// One envelope as it travels.
struct envelope {
  std::string type;
  nlohmann::json payload = nlohmann::json::object();
  std::optional<std::string> id;
  std::optional<std::string> reply_to;
};

enum class wire_format { json_text, cbor_binary };

/// Decoding bounds; every one has a default.
struct envelope_limits {
  std::size_t max_bytes = 1u << 20;  ///< a larger document: error::json_too_large
  std::size_t max_depth = 64;        ///< deeper nesting: error::json_too_deep
};

/// Encodes an envelope (text JSON, or CBOR for binary frames).
TETHER_DECL std::string encode_envelope(const envelope& e, wire_format f = wire_format::json_text);

/// Decodes without throwing: malformed_json, json_too_large, json_too_deep, missing_type.
/// The nesting bound is checked before parsing, so hostile input cannot exhaust the stack.
TETHER_DECL boost::system::result<envelope> decode_envelope(std::string_view data,
                                                           wire_format f = wire_format::json_text,
                                                           const envelope_limits& limits = {});

/// What went wrong with one incoming message; the connection goes on.
struct envelope_error {
  error_code error;     ///< malformed_json, json_too_deep, json_too_large, missing_type,
                        ///< unknown_type or payload_mismatch
  std::string type;     ///< the envelope's type, when it had one
  std::string detail;   ///< e.g. the decoder's message for payload_mismatch
};

struct envelope_options {
  wire_format format = wire_format::json_text;
  envelope_limits limits{};
  /// Requests waiting for a reply at once; more fail with error::busy.
  std::size_t max_pending_requests = 1024;
};

/** Typed messaging over a ws::client.

    Handlers are registered per type with on<T>(); a message whose type has no handler goes to
    on_unknown() (or is reported as error::unknown_type if none), and every bad input is
    reported through on_error(), never thrown into the receive loop, never silently dropped.
    request<Reply>() correlates by id, times out cleanly and fails with connection_lost when
    the connection drops (it is not re-sent).

    Thread safety: use one envelope_channel from one executor (the coroutine that runs
    `run()` and the ones that call request/send). The ws::client below is thread-safe.
*/
class envelope_channel {
 public:
  using handler = std::function<void(const envelope&)>;

  envelope_channel(client& c, envelope_options o = {}) : client_(c), opts_(o) {}

  /// Sends `msg` as an envelope (optionally with an id / reply_to). Completion as client::async_send.
  template <envelope_message T, class Token = asio::deferred_t>
  auto async_send(const T& msg, Token&& token = {}, std::optional<std::string> id = {},
                  std::optional<std::string> reply_to = {}) {
    envelope e{std::string(T::type), nlohmann::json(msg), std::move(id), std::move(reply_to)};
    return client_.async_send(frame(e), std::forward<Token>(token));
  }

  /// Registers the handler for type T (replacing an earlier one). The payload is decoded
  /// with from_json; a payload that does not decode is reported as payload_mismatch.
  template <envelope_message T>
  void on(std::function<void(T, const envelope&)> h) {
    handlers_[std::string(T::type)] = [this, h = std::move(h)](const envelope& e) {
      // nlohmann's exceptions stop here, at exactly one boundary.
      std::optional<T> value;
      try {
        value = e.payload.get<T>();
      } catch (const std::exception& ex) {
        report({make_error_code(error::payload_mismatch), e.type, ex.what()});
        return;
      }
      h(std::move(*value), e);
    };
  }
  void on_unknown(handler h) { unknown_ = std::move(h); }
  void on_error(std::function<void(const envelope_error&)> h) { on_error_ = std::move(h); }

  /// Feeds one received message: decodes and dispatches it. Returns what went wrong, if anything
  /// (also reported to on_error).
  TETHER_DECL error_code dispatch(const message& m);
  /// Fails every pending request with connection_lost.
  TETHER_DECL void connection_lost();

  /// Pulls the client's events until it closes: messages are dispatched, every other event is
  /// passed to `on_event` (connected, disconnected, reconnecting...). Pending requests fail on
  /// each disconnection.
  asio::awaitable<void> run(std::function<void(const event&)> on_event = {}) {
    for (;;) {
      auto [ec, ev] = co_await client_.async_next_event(asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      if (auto* m = std::get_if<message>(&ev)) {
        dispatch(*m);
        continue;
      }
      if (std::holds_alternative<disconnected>(ev)) connection_lost();
      if (on_event) on_event(ev);
    }
    connection_lost();
  }

  /// Sends `req` with a fresh id and waits for the envelope whose reply_to names it.
  /// Returns the decoded reply, or request_timeout, connection_lost, payload_mismatch, busy,
  /// or the send's error.
  template <class Reply, envelope_message Request>
  asio::awaitable<boost::system::result<Reply>> request(const Request& req, std::chrono::milliseconds timeout) {
    if (pending_.size() >= opts_.max_pending_requests) co_return make_error_code(error::busy);
    auto ex = co_await asio::this_coro::executor;
    const std::string id = next_id();
    auto slot = std::make_shared<pending>(ex);
    pending_.emplace(id, slot);
    envelope e{std::string(Request::type), nlohmann::json(req), id, std::nullopt};
    const message m = frame(e);
    auto [sec] = co_await client_.async_send(m, asio::as_tuple(asio::use_awaitable));
    if (sec && !slot->outcome) {
      // A write cut short by a dying connection is a lost connection to the caller.
      const bool local = sec == error::outbox_full || sec == error::expired;
      slot->outcome = boost::system::result<nlohmann::json>(local ? sec : make_error_code(error::connection_lost));
    }
    if (!slot->outcome) {
      slot->timer.expires_after(timeout);
      co_await slot->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    pending_.erase(id);
    if (!slot->outcome) co_return make_error_code(error::request_timeout);
    if (!*slot->outcome) co_return slot->outcome->error();
    try {
      co_return slot->outcome->value().template get<Reply>();
    } catch (const std::exception& ex2) {
      report({make_error_code(error::payload_mismatch), "", ex2.what()});
      co_return make_error_code(error::payload_mismatch);
    }
  }

  std::size_t pending_requests() const noexcept { return pending_.size(); }

 private:
  struct pending {
    explicit pending(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<boost::system::result<nlohmann::json>> outcome;
  };

  message frame(const envelope& e) const {
    return opts_.format == wire_format::json_text ? message::text(encode_envelope(e, opts_.format))
                                                  : message::binary(encode_envelope(e, opts_.format));
  }
  TETHER_DECL std::string next_id();
  TETHER_DECL void report(const envelope_error& err);

  client& client_;
  envelope_options opts_;
  std::map<std::string, handler> handlers_;
  handler unknown_;
  std::function<void(const envelope_error&)> on_error_;
  std::map<std::string, std::shared_ptr<pending>> pending_;
  std::uint64_t counter_ = 0;
  std::string id_prefix_;
};

}  // namespace tether::ws
