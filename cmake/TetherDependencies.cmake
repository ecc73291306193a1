# Finds tether's dependencies; a missing one stops configuration with the Debian package to
# install, instead of CMake's generic message.
include_guard(GLOBAL)

macro(tether_require _found _what _package)
  if(NOT ${_found})
    message(FATAL_ERROR "tether needs ${_what}. On Debian/Ubuntu: apt-get install ${_package}")
  endif()
endmacro()

find_package(Threads REQUIRED)
find_package(Boost 1.81 CONFIG QUIET)
tether_require(Boost_FOUND "Boost >= 1.81 (Asio, Beast, URL)" libboost1.81-dev)
find_package(OpenSSL 1.1.1 QUIET)
tether_require(OPENSSL_FOUND "OpenSSL" libssl-dev)
find_package(nlohmann_json 3.10 CONFIG QUIET)
tether_require(nlohmann_json_FOUND "nlohmann_json" nlohmann-json3-dev)
# xxHash's header only (XXH3 for checkpoint chunk digests, inlined into the library's own
# translation units; nothing to link).
find_path(TETHER_XXHASH_INCLUDE_DIR xxhash.h)
tether_require(TETHER_XXHASH_INCLUDE_DIR "xxHash's header (xxhash.h)" libxxhash-dev)
