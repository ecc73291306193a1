// tether/net.hpp: the shared layer: URLs, errors, backoff, retry classification, TLS, logging.
#pragma once

#include <tether/net/backoff.hpp>
#include <tether/net/error.hpp>
#include <tether/net/http.hpp>
#include <tether/net/log.hpp>
#include <tether/net/proxy.hpp>
#include <tether/net/retry.hpp>
#include <tether/net/tls.hpp>
#include <tether/net/url.hpp>
