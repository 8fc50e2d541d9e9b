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
/// the seconds so far and the parallel work items done of those started (or, for a phase that
/// counts its own steps with steps_done(), those), then "done in X s".
class Phase {
 public:
  /// Starts the phase called `name`; `steps` > 0: a phase of that many steps of its own, reported
  /// as steps_done() tells instead of the parallel work items.
  explicit Phase(std::string name, int64_t steps = 0);
  /// Ends it (the ticker stops; a reported phase prints its time).
  ~Phase();
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;
  /// A phase of its own steps: `done` of them are done.
  void steps_done(int64_t done) { steps_done_.store(done, std::memory_order_relaxed); }

 private:
  void tick();
  std::string status() const;

  std::string name_;
  std::chrono::steady_clock::time_point start_;
  int64_t done0_ = 0, total0_ = 0;  ///< work counts when the phase began
  int64_t steps_ = 0;               ///< the phase's own steps (0: it reports the work items)
  std::atomic<int64_t> steps_done_{0};
  bool terminal_ = false;
  bool shown_ = false;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread ticker_;
};

}  // namespace patlab::cli
