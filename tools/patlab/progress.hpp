// Progress on stderr (stdout stays machine-readable): one line per step, and for long phases a
// line that updates in place on a terminal, or an occasional plain line otherwise. --quiet turns
// all of it off; errors are never silenced.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace patlab::cli {

/// A phase is reported once it has run this long.
inline constexpr double kProgressAfterSeconds = 2.0;
/// How often the line is redrawn on a terminal.
inline constexpr double kTerminalRefreshSeconds = 0.5;
/// How often a plain line is printed when stderr is not a terminal.
inline constexpr double kPlainProgressSeconds = 10.0;

/// Turns progress output off (--quiet) or on.
void set_quiet(bool quiet);

/// Longest text one_line() returns before it cuts (an error line quotes the user's input, which
/// may be a megabyte-long name).
inline constexpr size_t kOneLineMaxBytes = 2000;

/// `text` with control characters and bytes that are not UTF-8 written as escapes (\n, \t, \xNN),
/// cut after kOneLineMaxBytes with a note of what was left out: one readable line whatever the input.
std::string one_line(const std::string& text);

/// Prints "patlab: <line>" on stderr unless quiet.
void progress(const std::string& line);

/// A phase that may take a while ("building", "oracle"): from kProgressAfterSeconds on, it shows
/// the seconds so far and the parallel work items done of those started, then "done in X s".
class Phase {
 public:
  /// Starts the phase called `name`.
  explicit Phase(std::string name);
  /// Ends it (the ticker stops; a reported phase prints its time).
  ~Phase();
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;

 private:
  void tick();
  std::string status() const;

  std::string name_;
  std::chrono::steady_clock::time_point start_;
  int64_t done0_ = 0, total0_ = 0;  ///< work counts when the phase began
  bool terminal_ = false;
  bool shown_ = false;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread ticker_;
};

}  // namespace patlab::cli
