// Which executor a client's connection lives on (strand_over), and what a type-erased hot-path
// handler keeps of its own executor (erase_handler).
#include "support/executors.hpp"

#include <tether/net/error.hpp>
#include <tether/ws/detail/erased_handler.hpp>
#include <tether/ws/detail/executors.hpp>

#include <boost/asio/bind_executor.hpp>

#include <catch2/catch.hpp>

namespace asio = boost::asio;
using tether::error_code;
using tether::ws::detail::erase_handler;
using tether::ws::detail::strand_over;

using bare_executor = tether::test::counting_executor;

TEST_CASE("strand_over: a strand of its own unless the application's executor serializes already", "[ws][executors]") {
  struct row {
    const char* what;
    int hint;
    bool app_strand;  // the application hands over a strand of the io_context
    bool same;        // the connection lives on the application's executor itself
  };
  const auto r = GENERATE(row{"io_context, default hint", BOOST_ASIO_CONCURRENCY_HINT_DEFAULT, false, false},
                          row{"io_context, hint 1 (a suggestion, not a promise)", 1, false, false},
                          row{"io_context, UNSAFE_IO (one thread promised)", BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO, false, true},
                          row{"io_context, UNSAFE (one thread promised)", BOOST_ASIO_CONCURRENCY_HINT_UNSAFE, false, true},
                          row{"a strand of an io_context", 1, true, true});
  INFO(r.what);
  asio::io_context ctx(r.hint);
  const asio::any_io_executor app = r.app_strand ? asio::any_io_executor(asio::make_strand(ctx))
                                                 : asio::any_io_executor(ctx.get_executor());
  const auto own = strand_over(app);
  CHECK((own == app) == r.same);
  if (!r.same) CHECK(own.target<asio::strand<asio::io_context::executor_type>>() != nullptr);
}

TEST_CASE("erase_handler: the handler's executor kept when an any_io_executor can hold it", "[ws][executors]") {
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  auto plain = erase_handler<void(error_code)>([](error_code) {});
  CHECK(plain.ex_known);
  CHECK(!plain.ex);  // none of its own: the connection's runs it
  auto bound = erase_handler<void(error_code)>(asio::bind_executor(strand, [](error_code) {}));
  CHECK(bound.ex_known);
  CHECK(bound.ex == asio::any_io_executor(strand));
  auto bare = erase_handler<void(error_code)>(asio::bind_executor(bare_executor{&ctx}, [](error_code) {}));
  CHECK(!bare.ex_known);  // asked of the handler at completion
  CHECK(!bare.ex);
  // Whichever way, the handler itself is kept and runs once.
  int runs = 0;
  auto counted = erase_handler<void(error_code)>([&runs](error_code) { ++runs; });
  REQUIRE(counted);
  std::move(counted)(error_code{});
  CHECK(runs == 1);
}
