/// @file grid_dependency.cuh
/// @brief Programmatic dependent launch, the device half: a grid tells the launch that follows
/// it on its stream that it may begin.
///
/// PTX ISA, section "Parallel Synchronization and Communication Instructions: griddepcontrol"
/// (sm_90, PTX 7.8). A kernel launched with the attribute
/// cudaLaunchAttributeProgrammaticStreamSerialization may start before the kernel ahead of it on
/// the stream has finished: as soon as every CTA of that kernel has issued
/// `griddepcontrol.launch_dependents` (or exited). Its `griddepcontrol.wait` then waits for the
/// whole of the earlier grid and its memory. The buckets of stages 7 and 8 never wait, since they
/// read nothing another bucket writes; the merge waits, where it is launched behind a single
/// bucket (BucketLauncher::merge_link()).
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

// [wait-prerequisites]
/// `griddepcontrol.wait`: returns once every grid this one was launched behind (programmatic
/// dependent launch) has completed and its memory operations are visible to this grid; at once
/// for a grid launched the ordinary way, which started after them. A no-op before sm_90, where
/// every launch is ordinary.
__device__ __forceinline__ void wait_for_prerequisites() {
#if PATLAB_HOPPER_SM90
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
// [wait-prerequisites]

}  // namespace patlab::cuda::hopper
