// ICH_HD: a small function that CPU code and CUDA kernels share (core/philox.h,
// core/ceil_div.h, kernels/bilinear.h): __host__ __device__ under nvcc, inline elsewhere
// (the host compiler, and cuda-emu, whose kernels are host code).
#pragma once

#if defined(__CUDACC__)
#define ICH_HD __host__ __device__ __forceinline__
#else
#define ICH_HD inline
#endif
