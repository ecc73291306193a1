// tether/ws.hpp: the WebSocket client: options, events, client.
#pragma once

#include <tether/ws/client.hpp>
#include <tether/ws/events.hpp>
#include <tether/ws/options.hpp>
#include <tether/ws/envelope.hpp>
