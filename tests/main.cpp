// Test entry point for Catch2 2.x or 3.x. GPU tests (built with PATLAB_GPU_TEST) exit 77, which
// meson reports as "skipped", only when there is no CUDA device to run on; a broken CUDA host
// (driver too old, runtime error) fails them. With PATLAB_REQUIRE_GPU=1 in the environment (set
// by tools/gpu_run.sh on the GPU machine) a missing device fails them too: there they must run.
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#ifdef PATLAB_GPU_TEST
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "patlab/gpu.hpp"

namespace {

/// meson's exit code for a skipped test.
constexpr int kSkipExit = 77;
/// Exit code of a GPU test that could not run where it must.
constexpr int kFailExit = 1;
#ifdef PATLAB_GPU_NEEDS_SM90
/// Compute capability major of Hopper (sm_90).
constexpr int kHopperMajor = 9;
#endif

/// True when PATLAB_REQUIRE_GPU is set to anything but "" or "0".
bool gpu_required() {
  const char* v = std::getenv("PATLAB_REQUIRE_GPU");
  return v != nullptr && std::strcmp(v, "") != 0 && std::strcmp(v, "0") != 0;
}

}  // namespace
#endif

int main(int argc, char** argv) {
#ifdef PATLAB_GPU_TEST
  const patlab::gpu::DeviceInfo device = patlab::gpu::probe();
  if (device.broken) {
    std::printf("FAILED: %s\n", device.reason.c_str());
    return kFailExit;
  }
  if (!device.available) {
    if (gpu_required()) {
      std::printf("FAILED: PATLAB_REQUIRE_GPU is set but the GPU tests cannot run: %s\n", device.reason.c_str());
      return kFailExit;
    }
    std::printf("SKIPPED: %s\n", device.reason.c_str());
    return kSkipExit;
  }
#ifdef PATLAB_GPU_NEEDS_SM90
  // Tests of sm_90a code (the Hopper wrappers): that machine code runs on compute capability 9.0
  // only, so any other device is a skip, not a failure.
  if (device.cc_major != kHopperMajor || device.cc_minor != 0) {
    std::printf("SKIPPED: needs sm_90 (device %s is sm_%d%d)\n", device.name.c_str(), device.cc_major, device.cc_minor);
    return kSkipExit;
  }
#endif
  std::printf("device: %s, %d SMs\n", device.name.c_str(), device.sm_count);
#endif
  return Catch::Session().run(argc, argv);
}
