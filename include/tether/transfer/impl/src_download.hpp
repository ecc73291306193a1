// tether/transfer/impl/src_download.hpp: tether::transfer's downloads (Beast HTTP + TLS instantiations).
#pragma once

#include <tether/transfer/impl/src_begin.hpp>

#include <tether/transfer/impl/checkpoint.ipp>
#include <tether/transfer/impl/download.ipp>
#include <tether/transfer/impl/segments.ipp>

#include <tether/transfer/impl/src_end.hpp>
