// Which of the two builds of kernels/cuda this translation unit belongs to.
//
// kernels/cuda is compiled twice into the same binaries: by nvcc (the `cuda` backend,
// ICH_CUDA_EMU undefined) and by the host compiler with kernels/emu (the `cuda-emu`
// backend, ICH_CUDA_EMU=1). Every symbol of kernels/cuda therefore lives in
// ich::ICH_CUDA_NS, a namespace that differs per flavour, so the two copies never
// collide at link time. Only the factories of kernels/backend_factories.h and
// kernels/cuda/cuda_options.h live in ich:: itself, each defined by one flavour.
#pragma once

#if defined(ICH_CUDA_EMU)
#define ICH_CUDA_NS cuda_emu
#define ICH_CUDA_FLAVOUR "cuda-emu"
#else
#define ICH_CUDA_NS cuda
#define ICH_CUDA_FLAVOUR "cuda"
#endif
