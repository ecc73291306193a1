// tether/transfer/impl/src_begin.hpp: opens the compiled part of tether::transfer (no include
// guard: src_end.hpp closes what this opens, once per src_*.hpp).
//
// These definitions are compiled in exactly one translation unit (src/ or the application's one
// <tether/src.hpp>), so GCC's warning about coroutine frames and helpers that hold lambda types
// (types without linkage) in a header cannot point at an ODR problem here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsubobject-linkage"
#endif
