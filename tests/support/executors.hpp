#pragma once
// Test executors with properties the library must cope with.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <utility>

namespace tether::test {

/// An executor an any_io_executor cannot hold (it names no execution context): posts to an
/// io_context and, when given a counter, counts what it ran.
struct counting_executor {
  boost::asio::io_context* ctx;
  int* runs = nullptr;
  bool operator==(const counting_executor& o) const noexcept { return ctx == o.ctx && runs == o.runs; }
  bool operator!=(const counting_executor& o) const noexcept { return !(*this == o); }
  template <class F>
  void execute(F f) const {
    boost::asio::post(*ctx, [f = std::move(f), r = runs]() mutable {
      if (r) ++*r;
      std::move(f)();
    });
  }
};

}  // namespace tether::test
