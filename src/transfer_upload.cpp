// Compiles tether::transfer's uploads once (Beast HTTP + TLS instantiations live here).
#include <tether/transfer/impl/src_upload.hpp>
