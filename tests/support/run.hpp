// Test helpers: run a coroutine on an io_context with a hard time bound.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <exception>

namespace tether::test {

/// Runs `coro` (an asio::awaitable<void>) to completion on `ioc`, failing the test if it does
/// not finish within `limit` or throws.
template <class Awaitable>
void run_bounded(boost::asio::io_context& ioc, Awaitable coro,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  bool done = false;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(coro), [&](std::exception_ptr e) {
    done = true;
    error = e;
    ioc.stop();
  });
  ioc.run_for(limit);
  // Let everything the test started wind down (bounded as well).
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(200));
  REQUIRE(done);
  if (error) std::rethrow_exception(error);
}

}  // namespace tether::test
