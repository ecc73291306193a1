// The chat example's message types, shared by chat_server and chat_client.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

/// client -> server: I am here (sent after every (re)connect), and the last message id I have
/// seen: the server replays what came after it from its history.
struct join {
  static constexpr std::string_view type = "chat.join";
  std::string name;
  std::uint64_t last_id = 0;
};
/// client -> server: a line typed by `name`. The envelope's id is echoed in the ack.
struct say {
  static constexpr std::string_view type = "chat.say";
  std::string name;
  std::string text;
};
/// server -> client, reply_to the say: stored with this id and time.
struct ack {
  static constexpr std::string_view type = "chat.ack";
  std::uint64_t id = 0;
  std::int64_t ts = 0;  // milliseconds since the epoch
};
/// server -> everyone: a message.
struct message {
  static constexpr std::string_view type = "chat.message";
  std::uint64_t id = 0;
  std::int64_t ts = 0;
  std::string from;
  std::string text;
};
/// server -> everyone: presence changes; to a joiner: who is online.
struct presence {
  static constexpr std::string_view type = "chat.presence";
  std::string event;  // "joined", "left" or "online"
  std::string name;
  std::vector<std::string> online;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(join, name, last_id)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(say, name, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ack, id, ts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(message, id, ts, from, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(presence, event, name, online)

}  // namespace chat
