// Helpers shared by the CPU tests.
#pragma once

#include <functional>
#include <string>

#include "catch.hpp"
#include "patlab/error.hpp"
#include "patlab/model/workload.hpp"

/// The call throws patlab::Error of the given kind, with a one-line message containing `needle`.
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

/// A shape from its numbers.
inline patlab::Shape shape_of(int hq, int hkv, int d, int page, patlab::DType dtype = patlab::DType::fp16,
                              patlab::KvDType kv = patlab::KvDType::same) {
  patlab::Shape s;
  s.num_q_heads = hq;
  s.num_kv_heads = hkv;
  s.head_dim = d;
  s.page_size = page;
  s.dtype = dtype;
  s.kv_dtype = kv;
  return s;
}
