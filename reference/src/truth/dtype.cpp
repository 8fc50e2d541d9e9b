#include "patlab/truth/dtype.hpp"

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <vector>

#include "patlab/error.hpp"

namespace patlab {

const char* dtype_name(DType t) { return t == DType::fp16 ? "fp16" : "bf16"; }

DType parse_dtype(const std::string& s) {
  if (s == "fp16" || s == "half" || s == "float16") return DType::fp16;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "fp8" || s == "fp8_e4m3")
    throw Error(ErrorKind::usage, "unsupported dtype '" + s + "' for q (fp8 is a KV cache type: --kv-dtype fp8)");
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

const char* kv_dtype_option_name(KvDType t) { return t == KvDType::same ? "auto" : "fp8_e4m3"; }

const char* kv_dtype_name(KvDType kv, DType q) { return kv == KvDType::same ? dtype_name(q) : "fp8_e4m3"; }

KvDType parse_kv_dtype(const std::string& s) {
  if (s == "auto") return KvDType::same;
  if (s == "fp8" || s == "fp8_e4m3") return KvDType::fp8_e4m3;
  throw Error(ErrorKind::usage, "unsupported KV cache dtype '" + s + "' (expected auto, fp8 or fp8_e4m3)");
}

int kv_element_bytes(KvDType kv) { return kv == KvDType::same ? 2 : 1; }

namespace {
/// e4m3: exponent bias, mantissa bits, and the exponent of the smallest normal binade.
constexpr int kE4m3Bias = 7;
constexpr int kE4m3MantissaBits = 3;
constexpr int kE4m3MinNormalExp = 1 - kE4m3Bias;  // 2^-6
constexpr uint8_t kE4m3SignBit = 0x80;
constexpr uint8_t kE4m3MaxCode = 0x7E;  // 448
}  // namespace

float fp8_e4m3_to_float(uint8_t code) {
  const int exponent = (code >> kE4m3MantissaBits) & 0xF;
  const int mantissa = code & 0x7;
  if ((code & 0x7F) == kFp8E4m3NaN) return std::numeric_limits<float>::quiet_NaN();
  // Subnormals (exponent field 0): mantissa/8 * 2^-6; normals: (1 + mantissa/8) * 2^(e - 7).
  const float magnitude =
      exponent == 0 ? std::ldexp(static_cast<float>(mantissa), kE4m3MinNormalExp - kE4m3MantissaBits)
                    : std::ldexp(static_cast<float>(8 + mantissa), exponent - kE4m3Bias - kE4m3MantissaBits);
  return (code & kE4m3SignBit) ? -magnitude : magnitude;
}

uint8_t float_to_fp8_e4m3(float x) {
  if (std::isnan(x)) return kFp8E4m3NaN;
  const uint8_t sign = std::signbit(x) ? kE4m3SignBit : 0;
  const double a = std::fabs(static_cast<double>(x));
  if (a >= kFp8E4m3Max) return sign | kE4m3MaxCode;
  // The binade of a (never below the subnormal one, whose step is that of the first normal
  // binade), then a in units of the binade's step rounded to nearest even: exact, since the
  // scaling is by a power of two and the default rounding mode of nearbyint is to nearest even.
  int e = std::ilogb(a == 0.0 ? 1.0 : a);
  if (a == 0.0 || e < kE4m3MinNormalExp) e = kE4m3MinNormalExp;
  const double steps = std::nearbyint(std::ldexp(a, kE4m3MantissaBits - e));  // in [0, 16]
  int units = static_cast<int>(steps);
  if (units < 8) return sign | static_cast<uint8_t>(units);  // a subnormal (only when e is the lowest)
  if (units == 16) {  // rounded up into the next binade
    units = 8;
    ++e;
  }
  const int code = ((e + kE4m3Bias) << kE4m3MantissaBits) | (units - 8);
  return sign | static_cast<uint8_t>(code > kE4m3MaxCode ? kE4m3MaxCode : code);
}

const double* value_table(DType t) {
  static const auto make = [](DType dt) {
    std::vector<double> table(1 << 16);
    for (uint32_t b = 0; b < (1u << 16); ++b) table[b] = to_float(static_cast<uint16_t>(b), dt);
    return table;
  };
  static const std::vector<double> fp16 = make(DType::fp16);
  static const std::vector<double> bf16 = make(DType::bf16);
  return t == DType::fp16 ? fp16.data() : bf16.data();
}

const double* fp8_e4m3_value_table() {
  static const std::vector<double> table = [] {
    std::vector<double> t(1 << 8);
    for (uint32_t c = 0; c < (1u << 8); ++c) t[c] = fp8_e4m3_to_float(static_cast<uint8_t>(c));
    return t;
  }();
  return table.data();
}

}  // namespace patlab
