// tether/ws/src.hpp: the definitions of tether::ws (compiled once; see tether/src.hpp).
#pragma once

#include <tether/ws/impl/client.ipp>
#include <tether/ws/impl/key_rewriter.ipp>
#include <tether/ws/impl/reconnect_fsm.ipp>
#include <tether/ws/impl/session_rules.ipp>
#include <tether/ws/impl/transport.ipp>
#include <tether/ws/impl/envelope.ipp>
