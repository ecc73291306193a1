#!/usr/bin/env bash
# Installs what tether needs to build and test on Debian/Ubuntu (bookworm packages), using
# sudo only when not root. Sourced by test.sh and demo.sh; safe to run again.
tether_install_deps() {
  local packages=(cmake ninja-build g++ clang libclang-rt-14-dev libboost1.81-dev libssl-dev
                  nlohmann-json3-dev libxxhash-dev catch2 pkg-config python3 python3-websockets iproute2 curl)
  local missing=()
  # The test command also runs clang-tidy.
  [ "${1:-}" = "--with-interop" ] && packages+=(clang-tidy)
  # Real proxies for the proxy interop tests.
  [ "${1:-}" = "--with-interop" ] && packages+=(tinyproxy-bin microsocks)
  # systemd-socket-activate starts the agent the way its user units do.
  [ "${1:-}" = "--with-interop" ] && packages+=(systemd)
  # Node and npm may come from elsewhere than Debian: a working command is enough.
  if [ "${1:-}" = "--with-interop" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
    missing+=(nodejs npm)
  fi
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
