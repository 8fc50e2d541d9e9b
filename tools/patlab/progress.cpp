#include "progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "patlab/parallel.hpp"

namespace patlab::cli {

namespace {

bool g_quiet = false;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Moves the cursor to the start of the line and clears it.
constexpr const char* kClearLine = "\r\033[K";

}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }

namespace {

/// Bytes of the UTF-8 sequence that starts at text[i], or 0 if none does (a stray continuation
/// byte, a lead byte UTF-8 never uses, a truncated sequence).
size_t utf8_length(const std::string& text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

std::string one_line(const std::string& text) {
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < kOneLineMaxBytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x80 && utf8_length(text, i) > 0) {
      const size_t n = utf8_length(text, i);
      out.append(text, i, n);
      i += n - 1;
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size() - i) + " more bytes)";
  return out;
}

void progress(const std::string& line) {
  if (!g_quiet) std::cerr << "patlab: " << one_line(line) << std::endl;
}

Phase::Phase(std::string name, int64_t steps)
    : name_(one_line(name)), start_(std::chrono::steady_clock::now()), steps_(steps) {
  const WorkCount w = work_count();
  done0_ = w.done;
  total0_ = w.total;
  terminal_ = isatty(STDERR_FILENO) != 0;
  if (!g_quiet) ticker_ = std::thread([this] { tick(); });
}

Phase::~Phase() {
  if (!ticker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  ticker_.join();
  if (shown_) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", seconds_since(start_));
    std::cerr << (terminal_ ? kClearLine : "") << "patlab: " << name_ << ": done in " << buf << " s" << std::endl;
  }
}

std::string Phase::status() const {
  const WorkCount w = work_count();
  const bool own = steps_ > 0;
  char buf[128];
  std::snprintf(buf, sizeof buf, ": %.0f s, %lld of %lld %s done", seconds_since(start_),
                static_cast<long long>(own ? steps_done_.load(std::memory_order_relaxed) : w.done - done0_),
                static_cast<long long>(own ? steps_ : w.total - total0_), own ? "steps" : "work items");
  return "patlab: " + name_ + buf;
}

void Phase::tick() {
  std::unique_lock<std::mutex> lock(mutex_);
  const double first = kProgressAfterSeconds;
  const double every = terminal_ ? kTerminalRefreshSeconds : kPlainProgressSeconds;
  auto next = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(first));
  while (!wake_.wait_until(lock, next, [this] { return stop_; })) {
    if (terminal_)
      std::cerr << kClearLine << status() << std::flush;
    else
      std::cerr << status() << std::endl;
    shown_ = true;
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(every));
  }
}

}  // namespace patlab::cli
