// tether/src.hpp: every definition of the library. Include it in exactly one translation
// unit of a header-only build (link tether::headers); tether::tether compiles it for you.
#pragma once

// tether::tether already compiles these definitions (and defines TETHER_SEPARATE_COMPILATION
// for its users): including them again would define every symbol twice.
#ifdef TETHER_SEPARATE_COMPILATION
#error "<tether/src.hpp> is for header-only builds: link tether::headers instead of tether::tether"
#endif

#include <tether/net/src.hpp>
#include <tether/ws/src.hpp>
#include <tether/transfer/src.hpp>
