/// @file numeric.cuh
/// @brief Numeric constants, conversions between the storage types and float, and 16-byte
/// vector loads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace patlab::cuda {

/// Elements of a 16-bit type in one 16-byte load.
inline constexpr int kVecElems = 8;
/// log2(e): converts natural-log scores into the log2 domain.
inline constexpr float kLog2e = 1.4426950408889634f;
/// ln(2): converts log2-domain lse back to natural log.
inline constexpr float kLn2 = 0.6931471805599453f;

/// An fp16 value as a float (exact).
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
/// A bf16 value as a float (exact).
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

/// `x` rounded to nearest in the storage type T.
/// @tparam T storage type to round to: __half or __nv_bfloat16 (the specialisations below)
template <typename T>
__device__ __forceinline__ T from_float(float x);
/// from_float for fp16: `x` rounded to nearest.
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
/// from_float for bf16: `x` rounded to nearest.
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/// Two floats from one 32-bit word holding two 16-bit values.
__device__ __forceinline__ float2 unpack2(uint32_t w, __half) {
  return __half22float2(*reinterpret_cast<const __half2*>(&w));
}
/// Two floats from one 32-bit word holding two bf16 values (the low half becomes .x).
__device__ __forceinline__ float2 unpack2(uint32_t w, __nv_bfloat16) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w));
}

/// Two floats rounded into one 32-bit word (x in the low half).
__device__ __forceinline__ uint32_t pack2(float x, float y, __half) {
  __half2 h = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}
/// Two floats rounded to nearest bf16 into one 32-bit word (x in the low half).
__device__ __forceinline__ uint32_t pack2(float x, float y, __nv_bfloat16) {
  __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}

/// Loads 8 consecutive values (16 bytes, 16-byte aligned) as floats.
/// @tparam T 16-bit storage type of the values (__half or __nv_bfloat16; fp8 has an overload below)
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&out)[kVecElems]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = unpack2(w[i], T{});
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// [fp8-convert]
/// Two fp8 e4m3 values (x in the low byte of `w`) as one 32-bit word of two fp16 values: one
/// cvt.rn.f16x2.e4m3x2 on sm_89+. Exact: every e4m3 value is an fp16 value.
__device__ __forceinline__ uint32_t fp8x2_to_16x2(uint16_t w, __half) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}
/// The same as two bf16 values, through fp16 and float: exact too (e4m3 has 3 mantissa bits and
/// exponents 2^-9..2^8, inside bf16's range).
__device__ __forceinline__ uint32_t fp8x2_to_16x2(uint16_t w, __nv_bfloat16) {
  const float2 f = unpack2(fp8x2_to_16x2(w, __half{}), __half{});
  return pack2(f.x, f.y, __nv_bfloat16{});
}

/// Loads 8 consecutive fp8 e4m3 values (8 bytes, 8-byte aligned) as floats: the CUDA-core
/// stages' load of an fp8 KV cache, half the bytes of load8() on a 16-bit one.
__device__ __forceinline__ void load8(const __nv_fp8_e4m3* p, float (&out)[kVecElems]) {
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  const uint32_t w[2] = {u.x, u.y};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = unpack2(fp8x2_to_16x2(static_cast<uint16_t>(w[i / 2] >> (16 * (i % 2))), __half{}), __half{});
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
// [fp8-convert]

/// The value of one fp8 e4m3 element as a float (the scalar loads of stage 1).
__device__ __forceinline__ float to_float(__nv_fp8_e4m3 x) { return static_cast<float>(x); }

/// Stores 8 floats rounded to T (16 bytes, 16-byte aligned).
/// @tparam T storage type the values are rounded to (__half or __nv_bfloat16)
template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&in)[kVecElems]) {
  uint4 u;
  u.x = pack2(in[0], in[1], T{});
  u.y = pack2(in[2], in[3], T{});
  u.z = pack2(in[4], in[5], T{});
  u.w = pack2(in[6], in[7], T{});
  *reinterpret_cast<uint4*>(p) = u;
}

}  // namespace patlab::cuda
