// tether/src.hpp: every definition of the library. Include it in exactly one translation
// unit of a header-only build (link tether::headers); tether::tether compiles it for you.
#pragma once

#include <tether/net/src.hpp>
#include <tether/ws/src.hpp>
#include <tether/transfer/src.hpp>
