// tether/transfer/impl/src_upload.hpp: tether::transfer's uploads, PUT and tus (Beast HTTP + TLS instantiations).
#pragma once

// These definitions are compiled in exactly one translation unit (src/ or the application's one
// <tether/src.hpp>), so GCC's warning about coroutine frames and helpers that hold lambda types
// (types without linkage) in a header cannot point at an ODR problem here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif

#include <tether/transfer/impl/upload.ipp>
#include <tether/transfer/impl/put.ipp>
#include <tether/transfer/impl/tus.ipp>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
