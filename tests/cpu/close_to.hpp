// A relative comparison for the serving tests (Catch's Approx differs between Catch2 2 and 3).
#pragma once

#include <algorithm>
#include <cmath>

/// Smallest magnitude the relative tolerance is taken against (so that 0 compares to 0).
inline constexpr double kCloseToFloor = 1e-12;

/// |got - want| <= rel x the larger magnitude of the two (at least kCloseToFloor).
inline bool close_to(double got, double want, double rel = 1e-9) {
  return std::abs(got - want) <= rel * std::max({std::abs(got), std::abs(want), kCloseToFloor});
}
