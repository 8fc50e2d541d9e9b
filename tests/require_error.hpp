// require_error: the call throws patlab::Error of the given kind, with a one-line message that
// contains `needle`. Shared by the CPU tests.
#pragma once

#include <functional>
#include <string>

#include "catch.hpp"
#include "patlab/error.hpp"

inline void require_error(const std::function<void()>& f, const std::string& needle,
                          patlab::ErrorKind kind = patlab::ErrorKind::usage) {
  INFO("expected an error containing: " << needle);
  try {
    f();
  } catch (const patlab::Error& e) {
    const std::string what = e.what();
    INFO("got: " << what);
    CHECK(what.find(needle) != std::string::npos);
    CHECK(what.find('\n') == std::string::npos);
    CHECK(e.kind() == kind);
    return;
  }
  FAIL("no patlab::Error was thrown");
}
