// Compiles tether::ws once (the Beast WebSocket + TLS instantiation lives here).
#include <tether/ws/src.hpp>
