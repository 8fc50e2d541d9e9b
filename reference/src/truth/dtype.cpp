#include "patlab/truth/dtype.hpp"

#include <Eigen/Core>

#include "patlab/error.hpp"

namespace patlab {

const char* dtype_name(DType t) { return t == DType::fp16 ? "fp16" : "bf16"; }

DType parse_dtype(const std::string& s) {
  if (s == "fp16" || s == "half" || s == "float16") return DType::fp16;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  throw Error(ErrorKind::usage, "unsupported dtype '" + s + "' (expected fp16 or bf16)");
}

float to_float(uint16_t bits, DType t) {
  if (t == DType::fp16) return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(bits));
}

uint16_t from_float(float x, DType t) {
  if (t == DType::fp16) return Eigen::numext::bit_cast<uint16_t>(Eigen::half(x));
  return Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(x));
}

}  // namespace patlab
