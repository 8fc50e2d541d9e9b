/// @file dispatch.cuh
/// @brief From run-time dtype and head dim to compile-time template arguments.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <string>
#include <type_traits>

#include "patlab/error.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::cuda {

/// Carries a type through a generic lambda, which gets it back with
/// `using T = typename decltype(tag)::%type`; `kv_type` is the KV cache's storage type (T, or
/// __nv_fp8_e4m3 for an fp8 cache), `using KV = typename decltype(tag)::%kv_type`.
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V
template <typename T, typename KV = T>
struct TypeTag {
  /// Storage type of q and the output.
  using type = T;
  /// Storage type of K and V.
  using kv_type = KV;
};

/// The CUDA storage type of a DType.
/// @tparam D the DType: DType::fp16 gives __half, DType::bf16 __nv_bfloat16
template <DType D>
using storage_t = std::conditional_t<D == DType::fp16, __half, __nv_bfloat16>;

/// Calls `f(TypeTag<T>{})` with T = __half or __nv_bfloat16, the CUDA storage type of `dtype`.
/// @tparam F callable as f(tag): a TypeTag<T> with T = __half or __nv_bfloat16
template <typename F>
void dispatch_dtype(DType dtype, F&& f) {
  if (dtype == DType::fp16)
    f(TypeTag<__half>{});
  else
    f(TypeTag<__nv_bfloat16>{});
}

/// Calls `f(TypeTag<T, KV>{})` with T the CUDA storage type of q (`shape.dtype`) and KV that of
/// K and V: T, or __nv_fp8_e4m3 for an fp8 KV cache.
/// @tparam F callable as f(tag): a TypeTag<T, KV>
template <typename F>
void dispatch_dtype_kv(const Shape& shape, F&& f) {
  dispatch_dtype(shape.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (shape.kv_fp8())
      f(TypeTag<T, __nv_fp8_e4m3>{});
    else
      f(TypeTag<T, T>{});
  });
}

/// Calls `f(TypeTag<T, KV>{}, std::integral_constant<int, D>{})` with T = __half or
/// __nv_bfloat16, KV = T or __nv_fp8_e4m3 (dispatch_dtype_kv) and D = 64, 128 or 256 from the
/// shape; throws Error(unsupported) for any other head dim.
/// @tparam F callable as f(tag, dim): a TypeTag<T, KV> and std::integral_constant<int, D>
template <typename F>
void dispatch_dtype_head_dim(const Shape& shape, F&& f) {
  dispatch_dtype_kv(shape, [&](auto tag) {
    switch (shape.head_dim) {
      case 64: f(tag, std::integral_constant<int, 64>{}); break;
      case 128: f(tag, std::integral_constant<int, 128>{}); break;
      case 256: f(tag, std::integral_constant<int, 256>{}); break;
      default: throw Error(ErrorKind::unsupported, "head dim " + std::to_string(shape.head_dim) + " is not built");
    }
  });
}

/// Largest GQA group of each compiled group bucket: a kernel built for bucket G serves every
/// run-time group g <= G (and above the previous bucket), masking its rows for heads g..G-1.
/// Five instances per (dtype, head dim) instead of sixteen; a group at most doubles in its
/// bucket, and the masked heads cost registers and math, not memory traffic.
inline constexpr int kGroupBuckets[] = {1, 2, 4, 8, 16};

/// The bucket of `group`: the smallest of kGroupBuckets that is >= group (0 if none is).
constexpr int group_bucket(int group) {
  for (int b : kGroupBuckets)
    if (group <= b) return b;
  return 0;
}

/// Calls `f(std::integral_constant<int, G>{})` with G = group_bucket(shape.group()), the
/// largest group the kernel instance holds; the kernel takes the run-time group beside it.
/// Throws Error(unsupported) for a group above the largest bucket.
/// @tparam F callable as f(group): std::integral_constant<int, G>, G the group bucket
template <typename F>
void dispatch_group(const Shape& shape, F&& f) {
  switch (group_bucket(shape.group())) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    default: throw Error(ErrorKind::unsupported, "group size " + std::to_string(shape.group()) + " is not built");
  }
}

/// Calls `f(TypeTag<T, KV>{}, std::integral_constant<int, D>{}, std::integral_constant<int, G>{})`
/// for the shape's dtypes, head dim and group bucket.
/// @tparam F callable as f(tag, dim, group): a TypeTag<T, KV> and std::integral_constant<int, ...> of D and G
template <typename F>
void dispatch_dtype_head_dim_group(const Shape& shape, F&& f) {
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) { dispatch_group(shape, [&](auto group) { f(tag, dim, group); }); });
}

}  // namespace patlab::cuda
