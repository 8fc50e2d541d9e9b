/// @file dtype.hpp
/// @brief Storage types of q, K and V (fp16, bf16) and their conversions on the host.
///
/// Values are stored as raw 16-bit patterns so that one container serves both types; Eigen's
/// `Eigen::half` and `Eigen::bfloat16` do the rounding (round to nearest even).
#pragma once

#include <cstdint>
#include <string>

namespace patlab {

/// The 16-bit floating-point storage type of a workload.
enum class DType { fp16, bf16 };

/// "fp16" or "bf16".
const char* dtype_name(DType t);

/// Parses "fp16"/"half" or "bf16"/"bfloat16"; throws Error(usage) naming the bad value.
DType parse_dtype(const std::string& s);

/// The value of a stored 16-bit pattern.
float to_float(uint16_t bits, DType t);

/// The stored pattern of `x` rounded to nearest even.
uint16_t from_float(float x, DType t);

/// `x` rounded to the storage type and back: what a kernel sees after a cast.
inline float round_to(float x, DType t) { return to_float(from_float(x, t), t); }

}  // namespace patlab
