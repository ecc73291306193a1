// Compiles the agent and agent_client once (Asio's local sockets and nlohmann_json live here).
#include <tether/transfer/impl/src_agent.hpp>
