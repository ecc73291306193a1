// What the kernel holds on the loopback TCP connections of one server port, read from
// /proc/net/tcp: bytes a server wrote that its peer's process has not read yet.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace tether::test {

/// The sum, over the IPv4 connections to or from `port`, of what the server's sockets hold
/// unsent or unacknowledged (their tx_queue) and what the clients' sockets hold unread (their
/// rx_queue). Listening sockets are left out.
inline std::uint64_t kernel_queued_bytes(std::uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // the header
  std::uint64_t total = 0;
  const auto port_of = [](const std::string& addr) {
    const auto colon = addr.find(':');
    return colon == std::string::npos ? 0ul : std::stoul(addr.substr(colon + 1), nullptr, 16);
  };
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state, queues;
    if (!(in >> slot >> local >> remote >> state >> queues)) continue;
    const auto colon = queues.find(':');
    if (colon == std::string::npos || state == "0A") continue;  // 0A: listening
    const std::uint64_t tx = std::stoull(queues.substr(0, colon), nullptr, 16);
    const std::uint64_t rx = std::stoull(queues.substr(colon + 1), nullptr, 16);
    if (port_of(local) == port) total += tx;
    if (port_of(remote) == port) total += rx;
  }
  return total;
}

}  // namespace tether::test
