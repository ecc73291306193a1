// tether/transfer/impl/src_upload.hpp: tether::transfer's uploads, PUT and tus (Beast HTTP + TLS instantiations).
#pragma once

#include <tether/transfer/impl/src_begin.hpp>

#include <tether/transfer/impl/upload.ipp>
#include <tether/transfer/impl/put.ipp>
#include <tether/transfer/impl/tus.ipp>

#include <tether/transfer/impl/src_end.hpp>
