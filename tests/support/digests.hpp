// SHA-256 of the HTTP fixture's deterministic content and of files on disk, in 1 MiB pieces.
#pragma once

#include "fixtures/http_server.hpp"

#include <tether/transfer/detail/file.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace tether::test {

inline std::string content_sha256(std::uint64_t version, std::uint64_t size) {
  tether::transfer::detail::sha256 h;
  std::vector<char> buf(1 << 20);
  for (std::uint64_t off = 0; off < size; off += buf.size()) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
    for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(content_byte(version, off + i));
    h.update(buf.data(), n);
  }
  return h.hex_digest();
}

inline std::string file_sha256(const std::filesystem::path& p) {
  tether::transfer::detail::sha256 h;
  std::ifstream f(p, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(f.gcount()));
  }
  return h.hex_digest();
}

}  // namespace tether::test
