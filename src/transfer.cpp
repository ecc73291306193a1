// Compiles tether::transfer's core once: files, records, decisions, scheduler and manager API.
#include <tether/transfer/impl/src_core.hpp>
