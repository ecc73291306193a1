// Peak resident memory of this process, for tests that bound what an attack costs.
#pragma once

#include <sys/resource.h>

namespace tether::test {

inline long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace tether::test
