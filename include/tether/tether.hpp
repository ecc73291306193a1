// tether/tether.hpp: the whole library in one include (net, ws with envelopes, transfer).
#pragma once

#include <tether/net.hpp>
#include <tether/transfer.hpp>
#include <tether/ws.hpp>
