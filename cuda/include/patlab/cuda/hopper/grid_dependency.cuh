/// @file grid_dependency.cuh
/// @brief Programmatic dependent launch, the device half: a grid tells the launch that follows
/// it on its stream that it may begin.
///
/// PTX ISA, section "Parallel Synchronization and Communication Instructions: griddepcontrol"
/// (sm_90, PTX 7.8). A kernel launched with the attribute
/// cudaLaunchAttributeProgrammaticStreamSerialization may start before the kernel ahead of it on
/// the stream has finished: as soon as every CTA of that kernel has issued
/// `griddepcontrol.launch_dependents` (or exited). Its `griddepcontrol.wait` would then wait for
/// the whole of the earlier grid and its memory; stages 7 and 8 never issue it, since their
/// buckets read nothing another bucket writes (the merge after them is an ordinary launch).
#pragma once

#include "patlab/cuda/hopper/arch.cuh"

namespace patlab::cuda::hopper {

// [allow-dependents]
/// `griddepcontrol.launch_dependents`: the next launch on this stream, if it asked for
/// programmatic serialization, may begin once every CTA of this grid has issued this (repeats
/// within a CTA do nothing more). Unlike the other wrappers of this folder it is a no-op, not a
/// trap, before sm_90: the pack kernel, which issues it first thing, runs on every target, and
/// there its followers are ordinary launches.
__device__ __forceinline__ void allow_dependents() {
#if PATLAB_HOPPER_SM90
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// [allow-dependents]

}  // namespace patlab::cuda::hopper
