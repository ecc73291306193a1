// Header-only mode: the whole library compiled into this program (linked with tether::headers).
#include <tether/src.hpp>
