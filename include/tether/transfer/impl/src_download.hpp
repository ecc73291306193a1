// tether/transfer/impl/src_download.hpp: tether::transfer's downloads (Beast HTTP + TLS instantiations).
#pragma once

// These definitions are compiled in exactly one translation unit (src/ or the application's one
// <tether/src.hpp>), so GCC's warning about coroutine frames and helpers that hold lambda types
// (types without linkage) in a header cannot point at an ODR problem here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif

#include <tether/transfer/impl/checkpoint.ipp>
#include <tether/transfer/impl/download.ipp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
