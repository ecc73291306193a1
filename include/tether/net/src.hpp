// tether/net/src.hpp: the definitions of tether::net (compiled once; see tether/src.hpp).
#pragma once

#include <tether/net/impl/backoff.ipp>
#include <tether/net/impl/error.ipp>
#include <tether/net/impl/http.ipp>
#include <tether/net/impl/log.ipp>
#include <tether/net/impl/proxy.ipp>
#include <tether/net/impl/retry.ipp>
#include <tether/net/impl/tls.ipp>
#include <tether/net/impl/tls_relay.ipp>
#include <tether/net/impl/url.ipp>

// Boost.URL is compiled here too, so that neither users nor tether need libboost_url.
#include <boost/url/src.hpp>
