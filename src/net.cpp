// Compiles tether::net once.
#include <tether/net/src.hpp>
