// tether/transfer/src.hpp: the definitions of tether::transfer (compiled once; see tether/src.hpp).
#pragma once

#include <tether/transfer/impl/file.ipp>
#include <tether/transfer/impl/record.ipp>
#include <tether/transfer/impl/manager.ipp>
