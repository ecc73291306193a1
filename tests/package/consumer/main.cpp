// Uses the public API only; exits 0 when tether works as linked.
#include <tether/net.hpp>
#include <tether/ws.hpp>

#include <boost/asio/io_context.hpp>

#include <iostream>

int main() {
  auto u = tether::net::parse_url("wss://example.com:8443/chat?room=1");
  if (!u || u->port != 8443 || u->target != "/chat?room=1") return 1;
  boost::asio::io_context ioc;
  tether::ws::options o;
  o.url = "ws://127.0.0.1:1/";  // nothing listens: run ends once reconnection gives up
  o.reconnect.backoff.max_attempts = 1;
  o.reconnect.backoff.initial = std::chrono::milliseconds(1);
  o.reconnect.backoff.min = std::chrono::milliseconds(1);
  tether::ws::client c(ioc.get_executor(), o);
  tether::error_code result;
  c.async_run([&](tether::error_code ec) { result = ec; });
  ioc.run();
  std::cout << "tether " << TETHER_VERSION_STRING << ": run ended with '" << result.message() << "'\n";
  return result == tether::error::retries_exhausted ? 0 : 2;
}
