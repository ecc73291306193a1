// tether/config.hpp: build-mode macros shared by every tether header.
#pragma once

#include <tether/version.hpp>

// Definitions of non-template functions live in `impl/*.ipp` files. They are compiled once:
// either by the `tether::tether` library (which defines TETHER_SEPARATE_COMPILATION for its
// users), or, header-only, by including <tether/src.hpp> in exactly one translation unit of
// the application (link `tether::headers` instead of `tether::tether`).
#ifndef TETHER_DECL
#define TETHER_DECL
#endif
