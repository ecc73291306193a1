// Compiles tether::transfer's downloads once (Beast HTTP + TLS instantiations live here).
#include <tether/transfer/impl/src_download.hpp>
