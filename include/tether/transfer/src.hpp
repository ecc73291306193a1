// tether/transfer/src.hpp: the definitions of tether::transfer (compiled once; see tether/src.hpp).
// src/transfer*.cpp compile it in four parts (core, download, upload, agent) that build in parallel.
#pragma once

#include <tether/transfer/impl/src_core.hpp>
#include <tether/transfer/impl/src_download.hpp>
#include <tether/transfer/impl/src_upload.hpp>
#include <tether/transfer/impl/src_agent.hpp>
