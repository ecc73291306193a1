// tether/config.hpp: build-mode macros shared by every tether header.
#pragma once

#include <tether/version.hpp>

// Definitions of non-template functions live in `impl/*.ipp` files. They are compiled once:
// either by the `tether::tether` library (which defines TETHER_SEPARATE_COMPILATION for its
// users), or, header-only, by including <tether/src.hpp> in exactly one translation unit of
// the application (link `tether::headers` instead of `tether::tether`).
//
// TETHER_SEPARATE_COMPILATION: set by the tether::tether target (and tether.pc) for code that
// links the compiled library; <tether/src.hpp> refuses to compile under it, so that nobody
// defines the library twice by mistake.
// TETHER_DECL: marks each function that is declared in a header and defined in an `.ipp`. It
// expands to nothing unless defined before the first tether include, e.g. to an export
// attribute when packaging tether as a shared library with hidden visibility.
#ifndef TETHER_DECL
#define TETHER_DECL
#endif
