/// @file input_file.hpp
/// @brief Reading a file the user names (a workload, a trace): refused by kind and size before it
/// is read, so that /dev/zero, a FIFO or a huge file never hangs or exhausts the host.
#pragma once

#include <cstdint>
#include <string>

namespace patlab {

/// The contents of the file at `path`, which the messages call `what` ("workload file", "trace
/// file"). Throws Error(io) if it does not exist, is a directory or cannot be read, and
/// Error(usage) if it is not a regular file or holds more than `max_bytes` bytes (checked before
/// reading, and again while reading, since the file may grow meanwhile).
std::string read_input_file(const std::string& path, const std::string& what, int64_t max_bytes);

}  // namespace patlab
