// envelope_bench: envelope encode+decode (typed, bounded) against a plain nlohmann
// parse + dump of the same document, in one run. Prints one JSON line with the ratio.
#include <tether/ws/envelope.hpp>

#include <chrono>
#include <cstdio>

namespace {
struct chat_message {
  static constexpr std::string_view type = "chat.message";
  std::uint64_t id = 0;
  std::string from;
  std::string text;
  std::vector<std::string> tags;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(chat_message, id, from, text, tags)
}  // namespace

int main() {
  using clk = std::chrono::steady_clock;
  const chat_message msg{42, "alice", "hello there, this is a message of ordinary length for a chat", {"a", "b"}};
  const tether::ws::envelope e{"chat.message", nlohmann::json(msg), "req-1", std::nullopt};
  const std::string wire = tether::ws::encode_envelope(e);
  constexpr int rounds = 200000;
  std::size_t sink = 0;

  auto t0 = clk::now();
  for (int i = 0; i < rounds; ++i) {
    auto j = nlohmann::json::parse(wire);
    auto back = j.dump();
    sink += back.size();
  }
  const double plain = std::chrono::duration<double>(clk::now() - t0).count();

  t0 = clk::now();
  for (int i = 0; i < rounds; ++i) {
    auto d = tether::ws::decode_envelope(wire);
    auto typed = d->payload.get<chat_message>();
    const tether::ws::envelope out{std::string(chat_message::type), nlohmann::json(typed), d->id, std::nullopt};
    sink += tether::ws::encode_envelope(out).size();
  }
  const double typed = std::chrono::duration<double>(clk::now() - t0).count();

  // The envelope layer alone: decode (bounded) and encode, no conversion to a C++ type.
  t0 = clk::now();
  for (int i = 0; i < rounds; ++i) {
    auto d = tether::ws::decode_envelope(wire);
    sink += tether::ws::encode_envelope(*d).size();
  }
  const double env = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf(
      "{\"rounds\":%d,\"plain_msgs_per_s\":%.0f,\"envelope_msgs_per_s\":%.0f,\"envelope_overhead\":%.3f,"
      "\"typed_msgs_per_s\":%.0f,\"typed_overhead\":%.3f,\"sink\":%zu}\n",
      rounds, rounds / plain, rounds / env, env / plain - 1.0, rounds / typed, typed / plain - 1.0, sink);
}
