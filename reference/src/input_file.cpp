#include "patlab/input_file.hpp"

#include <filesystem>
#include <fstream>

#include "patlab/error.hpp"

namespace patlab {

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
  std::string text(static_cast<size_t>(max_bytes) + 1, '\0');
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  require(static_cast<int64_t>(text.size()) <= max_bytes, too_large);
  return text;
}

}  // namespace patlab
