/// @file output_file.hpp
/// @brief Writing a file the user names (a series, a trace, an export): a file that cannot be
/// opened, a failed write and a full disk each end in one error naming the file, never in an exit
/// status of 0 with nothing written.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace patlab {

/// Writes a whole file, then closes it and checks the stream, since a full disk shows only at the
/// close's flush (e.g. /dev/full). Throws Error(io) "cannot write <what> <path>: <reason>" when
/// the file cannot be opened or a write failed; an exception from `fill` passes through.
/// @param path the file, created or truncated
/// @param what what the messages call it ("series file", "trace file")
/// @param fill puts the whole contents into the stream it is given
/// @param binary open in binary mode (no newline translation)
void write_output_file(const std::string& path, const std::string& what, const std::function<void(std::ostream&)>& fill,
                       bool binary = false);

}  // namespace patlab
