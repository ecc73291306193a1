// Every public header compiles on its own (the others are checked by tests/headers).
#include <tether/net.hpp>
#include <tether/transfer.hpp>
#include <tether/ws.hpp>

#include <catch2/catch.hpp>

TEST_CASE("headers: the umbrella headers are self-contained", "[headers]") {
  CHECK(std::string(TETHER_VERSION_STRING) == "0.1.0");
}
