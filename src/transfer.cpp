// Compiles tether::transfer once (Beast HTTP + TLS instantiations live here).
#include <tether/transfer/src.hpp>
