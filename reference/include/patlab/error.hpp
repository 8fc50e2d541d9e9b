/// @file error.hpp
/// @brief The one error type of the library. Library code throws it; only the CLI and the tests
/// turn it into exit codes (see ErrorKind).
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace patlab {

/// What went wrong, which also decides the CLI's exit code.
enum class ErrorKind {
  usage,        ///< bad input from the user (malformed spec, unsupported shape...): exit 2
  unsupported,  ///< a valid request that this stage or build cannot serve: exit 2
  io,           ///< a file could not be read or written: exit 2
  device,       ///< a CUDA error or out-of-memory on the GPU: exit 3
};

/// An error with a one-line message that names the problem.
class Error : public std::runtime_error {
 public:
  /// An error of category `kind` whose what() is `message`.
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  /// The category of the error.
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// Throws Error(ErrorKind::usage, message) unless `condition` holds.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(ErrorKind::usage, message);
}

/// A number as the user wrote it, near enough, for a message: "0", "-3", "1.5", "1e+300" (up to 15
/// significant digits, no trailing zeros; std::to_string would print "1.500000").
inline std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

/// The choice among `values` that `name_of` spells `name`, for a command-line option with a fixed
/// set of words; throws Error(usage) "OPTION must be A, B or C (got 'NAME')" for any other word.
/// @tparam E the type of the choices (an enum)
/// @tparam N the number of choices
template <typename E, size_t N>
E parse_choice(const std::string& option, const std::string& name, const E (&values)[N], const char* (*name_of)(E)) {
  for (const E& v : values)
    if (name == name_of(v)) return v;
  std::string words;
  for (size_t i = 0; i < N; ++i) words += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(name_of(values[i]));
  throw Error(ErrorKind::usage, option + " must be " + words + " (got '" + name + "')");
}

}  // namespace patlab
