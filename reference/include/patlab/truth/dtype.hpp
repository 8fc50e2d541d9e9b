/// @file dtype.hpp
/// @brief Storage types of q, K and V (fp16, bf16; K and V also fp8 e4m3) and their conversions
/// on the host.
///
/// 16-bit values are stored as raw 16-bit patterns so that one container serves both types;
/// Eigen's `Eigen::half` and `Eigen::bfloat16` do the rounding (round to nearest even). fp8 e4m3
/// (the "fn" variant of the OCP FP8 formats, as vLLM's `--kv-cache-dtype fp8` stores K and V) is
/// coded here: 1 sign, 4 exponent (bias 7) and 3 mantissa bits, no infinities, 0x7F/0xFF NaN,
/// largest finite value 448, subnormals down to 2^-9.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace patlab {

/// The 16-bit floating-point storage type of q and the output (and of K/V unless they are fp8).
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

/// The storage type of the KV cache, as vLLM's `--kv-cache-dtype` names it: `same` (vLLM's
/// "auto") stores K and V in q's 16-bit type, `fp8_e4m3` in one byte with a per-tensor scale.
enum class KvDType { same, fp8_e4m3 };

/// "auto" or "fp8_e4m3" (the option's spelling).
const char* kv_dtype_option_name(KvDType t);

/// The name of the type K and V are stored in: q's dtype name for KvDType::same, else "fp8_e4m3".
const char* kv_dtype_name(KvDType kv, DType q);

/// Parses "auto", "fp8" or "fp8_e4m3"; throws Error(usage) naming the bad value.
KvDType parse_kv_dtype(const std::string& s);

/// Bytes of one K or V element stored as `kv` (2 for KvDType::same, 1 for fp8).
int kv_element_bytes(KvDType kv);

/// Largest finite fp8 e4m3 value (0x7E: 1.75 * 2^8).
inline constexpr float kFp8E4m3Max = 448.0f;
/// The fp8 e4m3 NaN code with the sign bit clear (0xFF is the other NaN).
inline constexpr uint8_t kFp8E4m3NaN = 0x7F;

/// The value of an fp8 e4m3 code: all 256 codes, subnormals included; 0x7F and 0xFF are NaN.
float fp8_e4m3_to_float(uint8_t code);

/// The fp8 e4m3 code of `x` rounded to nearest even, saturated to +-448 (what vLLM's
/// `scaled_fp8_quant` does: it clamps x / scale to [-448, 448] before converting); NaN gives
/// kFp8E4m3NaN. Infinities saturate too.
uint8_t float_to_fp8_e4m3(float x);

/// The value of every 16-bit pattern of `t` as a double, indexed by the pattern (decoding is
/// the oracle's hottest loop).
const double* value_table(DType t);
/// The value of every fp8 e4m3 code as a double, indexed by the code.
const double* fp8_e4m3_value_table();

}  // namespace patlab
