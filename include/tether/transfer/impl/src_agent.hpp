// tether/transfer/impl/src_agent.hpp: the agent (its protocol, book and socket server) and the
// applications' agent_client.
#pragma once

#include <tether/transfer/impl/src_begin.hpp>

#include <tether/transfer/impl/agent_protocol.ipp>
#include <tether/transfer/impl/agent_book.ipp>
#include <tether/transfer/impl/agent_server.ipp>
#include <tether/transfer/impl/agent_start.ipp>
#include <tether/transfer/impl/agent_client.ipp>

#include <tether/transfer/impl/src_end.hpp>
