// tether/transfer.hpp: crash-safe, resumable downloads and uploads (tether::transfer).
#pragma once

#include <tether/transfer/agent.hpp>
#include <tether/transfer/manager.hpp>
#include <tether/transfer/types.hpp>
