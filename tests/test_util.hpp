// Helpers shared by the CPU tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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

/// Checks that two trees drawn from the same seed are the same, segment for segment, and returns
/// the tree's signature (every segment's tokens and parent), for counting distinct draws.
inline std::vector<int64_t> same_tree_signature(const patlab::TokenTree& a, const patlab::TokenTree& b) {
  REQUIRE(a.segments.size() == b.segments.size());
  std::vector<int64_t> signature;
  for (size_t s = 0; s < a.segments.size(); ++s) {
    CHECK(a.segments[s].tokens == b.segments[s].tokens);
    CHECK(a.segments[s].parent == b.segments[s].parent);
    signature.push_back(a.segments[s].tokens);
    signature.push_back(a.segments[s].parent);
  }
  CHECK(a.request_ends == b.request_ends);
  return signature;
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
