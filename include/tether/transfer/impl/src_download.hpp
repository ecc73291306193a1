// tether/transfer/impl/src_download.hpp: tether::transfer's downloads (Beast HTTP + TLS instantiations).
#pragma once

#include <tether/transfer/impl/checkpoint.ipp>
#include <tether/transfer/impl/download.ipp>
