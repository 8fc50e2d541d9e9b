// Test entry point for Catch2 2.x or 3.x. GPU tests (built with PATLAB_GPU_TEST) exit 77, which
// meson reports as "skipped", when no CUDA device is usable.
#if __has_include(<catch2/catch_session.hpp>)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#ifdef PATLAB_GPU_TEST
#include <cstdio>

#include "patlab/gpu.hpp"
#endif

int main(int argc, char** argv) {
#ifdef PATLAB_GPU_TEST
  const patlab::gpu::DeviceInfo device = patlab::gpu::probe();
  if (!device.available) {
    std::printf("SKIPPED: %s\n", device.reason.c_str());
    return 77;
  }
  std::printf("device: %s, %d SMs\n", device.name.c_str(), device.sm_count);
#endif
  return Catch::Session().run(argc, argv);
}
