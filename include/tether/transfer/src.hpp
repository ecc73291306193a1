// tether/transfer/src.hpp: the definitions of tether::transfer (compiled once; see tether/src.hpp).
// src/transfer*.cpp compile it in three parts (core, download, upload) that build in parallel.
#pragma once

#include <tether/transfer/impl/src_core.hpp>
#include <tether/transfer/impl/src_download.hpp>
#include <tether/transfer/impl/src_upload.hpp>
