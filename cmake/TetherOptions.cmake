# Warnings and sanitizers for tether's own targets only: an INTERFACE target they link
# privately, never a global flag that would leak into a consumer's build.
include_guard(GLOBAL)

add_library(tether_build_options INTERFACE)
target_compile_options(tether_build_options INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow
  -Wcast-align -Woverloaded-virtual -Wnull-dereference
  $<$<BOOL:${TETHER_WARNINGS_AS_ERRORS}>:-Werror>
  # GCC 12 reports every member a C++20 designated initializer leaves to its default
  # (`{.count = 1}`); those defaults are the point of the aggregates' documented fields.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-missing-field-initializers>)
if(TETHER_SANITIZE)
  target_compile_options(tether_build_options INTERFACE
    -fsanitize=${TETHER_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  if(TETHER_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Clang 14 cannot emit -fsanitize=function's prologue data for split coroutine
    # functions ("Cannot represent a difference across sections"); every other UBSan check stays.
    target_compile_options(tether_build_options INTERFACE -fno-sanitize=function)
  endif()
  target_link_options(tether_build_options INTERFACE -fsanitize=${TETHER_SANITIZE})
endif()
