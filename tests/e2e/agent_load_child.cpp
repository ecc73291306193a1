// An application for the agent's load test: hands COUNT downloads (BASE_URL/fI to DIR/fI for I
// from FIRST) to the agent at SOCKET all at once through one agent_client, waits for every
// result, prints how many succeeded, and exits 0 when all did.
//   tether_agent_load_child SOCKET SESSION BASE_URL FIRST COUNT DIR
#include <tether/transfer.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  namespace tt = tether::transfer;
  if (argc != 7) {
    std::fprintf(stderr, "usage: tether_agent_load_child SOCKET SESSION BASE_URL FIRST COUNT DIR\n");
    return 1;
  }
  const std::string base = argv[3], dir = argv[6];
  const long first = std::strtol(argv[4], nullptr, 10), count = std::strtol(argv[5], nullptr, 10);
  boost::asio::io_context io;
  tt::agent_client_options o;
  o.socket_path = argv[1];
  o.session = argv[2];
  o.log.sink = [](tether::net::log_level, std::string_view line) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  };
  std::optional<tt::agent_client> client;
  client.emplace(io.get_executor(), o);
  long left = count, ok = 0;
  for (long i = first; i < first + count; ++i) {
    const auto name = "f" + std::to_string(i);
    tt::request r;
    r.url = base + "/" + name;
    r.file = dir + "/" + name;
    client->download(r, name, [&, name](const tt::result& res) {
      if (res.outcome == tt::outcome::success) ++ok;
      else std::fprintf(stderr, "%s: %s\n", name.c_str(), res.message.c_str());
      if (--left == 0) client.reset();  // sends the acknowledgements it owes, then nothing is left
    });
  }
  io.run();
  std::printf("%ld\n", ok);
  return ok == count ? 0 : 3;
}
