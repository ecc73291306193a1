#include <tether/net/log.hpp>

#include <catch2/catch.hpp>

#include <vector>

TEST_CASE("log: nothing by default, levels filter", "[net][log]") {
  tether::net::logger quiet;
  CHECK(!quiet.enabled(tether::net::log_level::error));
  quiet(tether::net::log_level::error, "ignored");
  std::vector<std::string> lines;
  tether::net::logger l{[&](tether::net::log_level, std::string_view s) { lines.emplace_back(s); },
                        tether::net::log_level::warn};
  l(tether::net::log_level::info, "no");
  l(tether::net::log_level::warn, "yes");
  CHECK(lines == std::vector<std::string>{"yes"});
}

TEST_CASE("log: secrets are redacted", "[net][log]") {
  using namespace tether::net;
  CHECK(redact_header("Authorization", "Bearer abc") == "Authorization: REDACTED");
  CHECK(redact_header("cookie", "a=b") == "cookie: REDACTED");
  CHECK(redact_header("X-Api-Key", "k") == "X-Api-Key: REDACTED");
  CHECK(redact_header("X-Auth-Token", "k") == "X-Auth-Token: REDACTED");
  CHECK(redact_header("Accept", "text/plain") == "Accept: text/plain");
  CHECK(redact_target("/a?token=x&room=2&access_token=y") == "/a?token=REDACTED&room=2&access_token=REDACTED");
  CHECK(redact_target("/plain") == "/plain");
  CHECK(redact("say s3cr3t twice s3cr3t", "s3cr3t") == "say REDACTED twice REDACTED");
}
