/// @file planner_detail.hpp
/// @brief Small helpers that the planner's source files share (not part of the API).
#pragma once

#include <cstdint>

namespace patlab::planner_detail {

/// ceil(a / b) for a >= 0, b > 0.
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace patlab::planner_detail
