#include "patlab/input_file.hpp"

#include <filesystem>
#include <fstream>
#include <vector>

#include "patlab/error.hpp"

namespace patlab {

namespace {
/// Bytes read at a time (the file grows the text by at most this past the limit before it is refused).
constexpr size_t kReadChunkBytes = size_t{1} << 16;
}  // namespace

std::string read_input_file(const std::string& path, const std::string& what, int64_t max_bytes) {
  const std::string name = what + " '" + path + "'";
  const std::string too_large = name + " is larger than " + std::to_string(max_bytes >> 20) + " MiB";
  std::error_code ec;  // the overloads that do not throw
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) throw Error(ErrorKind::io, "cannot read " + name);
  if (std::filesystem::is_directory(st)) throw Error(ErrorKind::io, "cannot read " + name + " (it is a directory)");
  require(std::filesystem::is_regular_file(st), name + " is not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  require(!ec && size <= static_cast<uintmax_t>(max_bytes), too_large);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, "cannot read " + name);
  // Read in chunks up to the limit: a buffer of max_bytes (256 MiB for traces) for every file
  // was the peak memory of memsim on a 100-byte trace.
  std::string text;
  text.reserve(static_cast<size_t>(size));
  std::vector<char> chunk(kReadChunkBytes);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())), in.gcount() > 0) {
    text.append(chunk.data(), static_cast<size_t>(in.gcount()));
    require(static_cast<int64_t>(text.size()) <= max_bytes, too_large);
  }
  return text;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items(1);
  for (char c : text) {
    if (c == separator) items.emplace_back();
    else items.back() += c;
  }
  return items;
}

}  // namespace patlab
