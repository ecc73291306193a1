// tether-transfer --agent: the commands that hand transfers to tether-agent.
#pragma once

#include <tether/transfer/types.hpp>

#include <string>
#include <vector>

namespace transfer_cli {

struct agent_args {
  bool on = false, detach = false, no_start = false;
  std::string socket, session, state;
};

/// The commands with --agent: the transfer runs in the agent; this process hands it over,
/// shows its progress and prints its result (or only its id, with --detach). Returns the exit
/// code (as download's; 130 when interrupted: the transfer goes on in the agent).
int agent_main(const agent_args& ag, const std::vector<std::string>& positional, const tether::transfer::request& req,
               const std::string& id, const std::string& protocol);

}  // namespace transfer_cli
