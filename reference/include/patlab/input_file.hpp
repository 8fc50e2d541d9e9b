/// @file input_file.hpp
/// @brief Reading a file the user names (a workload, a trace): refused by kind and size before it
/// is read, so that /dev/zero, a FIFO or a huge file never hangs or exhausts the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace patlab {

/// The contents of the file at `path`, which the messages call `what` ("workload file", "trace
/// file"). Throws Error(io) if it does not exist, is a directory or cannot be read, and
/// Error(usage) if it is not a regular file or holds more than `max_bytes` bytes (checked before
/// reading, and again while reading, since the file may grow meanwhile).
std::string read_input_file(const std::string& path, const std::string& what, int64_t max_bytes);

/// The items of `text` between `separator`s, empty ones included ("a,,b," has four, "" one), so
/// that a parser of the user's lists can refuse a stray separator instead of skipping it.
std::vector<std::string> split(const std::string& text, char separator);

}  // namespace patlab
