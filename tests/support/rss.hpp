// Peak resident memory of this process, for tests that bound what an attack costs.
#pragma once

#include <sys/resource.h>

namespace tether::test {

inline long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

/// The peak-memory bound of the hostile tests: 256 MiB, or 512 MiB under AddressSanitizer,
/// whose shadow memory, redzones and quarantine of freed blocks count in the process's RSS
/// (a GCC Debug ASan build of one hostile test peaks at 230-260 MiB with the attack refused).
inline constexpr long rss_bound_kib() {
#if defined(__SANITIZE_ADDRESS__)
  return 512L * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 512L * 1024;
#else
  return 256L * 1024;
#endif
#else
  return 256L * 1024;
#endif
}

}  // namespace tether::test
