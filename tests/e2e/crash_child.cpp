// A child for the crash sweep: downloads URL to DEST under ID in STATE with small checkpoints,
// and SIGKILLs itself at the Nth file operation under DIR (0: never). Prints the number of
// file operations it made when it ends by itself.
//   tether_crash_child DIR STATE URL DEST ID N
#include <tether/transfer.hpp>
#include <tether/transfer/detail/file.hpp>

#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: tether_crash_child DIR STATE URL DEST ID N\n");
    return 1;
  }
  const std::string under = argv[1];
  const long crash_at = std::strtol(argv[6], nullptr, 10);
  static std::atomic<long> seen{0};
  tether::transfer::detail::set_file_fault([under, crash_at](tether::transfer::detail::file_op,
                                                              const std::filesystem::path& p) {
    if (p.string().rfind(under, 0) == 0 && ++seen == crash_at) ::raise(SIGKILL);
    return 0;
  });
  boost::asio::thread_pool pool(1);
  tether::transfer::options o;
  o.state_dir = argv[2];
  o.checkpoint_bytes = 64u << 10;
  o.max_unsynced_bytes = 128u << 10;
  o.receive_buffer_bytes = 64u << 10;
  tether::transfer::request r;
  r.url = argv[3];
  r.file = argv[4];
  tether::transfer::result res;
  {
    tether::transfer::manager m(pool.get_executor(), o);
    res = m.download(r, argv[5], boost::asio::use_future).get();
  }
  pool.join();
  std::printf("%ld\n", seen.load());
  if (res.outcome != tether::net::outcome::success) {
    std::fprintf(stderr, "%s\n", res.message.c_str());
    return 3;
  }
  return 0;
}
