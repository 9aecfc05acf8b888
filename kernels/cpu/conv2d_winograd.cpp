// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016) for 3x3 / stride 1 / pad 1, and the ICH_CONV_ALGO setting (conv_algo.h).
//
// Each output tile of 4x4 pixels is computed from a 6x6 input tile (stride 4, starting one
// pixel up and left of it: pad 1) as
//   Y = A^T [ sum_c (G g_kc G^T) (.) (B^T d_c B) ] A
// i.e. 36 multiplications per (k, c, tile) instead of 144 for the direct sum. With the 36
// transformed positions xi = 6 i + j as the outer index, the sum over c is 36 GEMMs:
//   U[xi] (k, c)  = G g G^T           weights, transformed per call (they change every step)
//   V[xi] (c, T)  = B^T d B           one column per tile of a block of T tiles
//   M[xi] (k, T)  = U[xi] * V[xi]     cblas_sgemm, single-threaded inside (gemm.cpp)
//   y tile        = A^T M A + bias    written where it lies inside the image
// Tiles are numbered row-major over the image (tiles_w per row), images one after another; a
// block is a range of consecutive tile numbers, so it may span several tile rows and images
// ("segments"). Blocks are sized so that V + M of one block stay near L2 (at least ~64 tiles,
// an even number of equal blocks);
// OpenMP runs over the blocks, each thread with its own V, M and scratch. Every output element is
// produced by one task whose arithmetic depends only on the shape, so the result is the same for
// any number of threads.
//
// The transforms run one segment of tiles at a time with the tile as the innermost loop index,
// so that the compiler vectorises them: the rows of the input tiles are read straight from the
// image (stride 4, overlapping by 2; edge tiles through a zero-padded copy), the rows of the
// output tiles written straight into it.
//
// Accuracy: the transforms multiply by up to 8 (A) and 5 (B) and divide by 24 (G), so the
// rounding error is a few times that of the direct sum (measured: docs/PERFORMANCE.md).
//
// The weight gradient (winograd_backward_weight, at the end) reuses the input transform:
//   dW[k][c] = G^T [ sum over tiles (A dY A^T) (.) (B^T d B) ] G.
#include "kernels/cpu/conv2d_winograd.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/conv_algo.h"

namespace ich::cpu {

using namespace winograd;

// Blocks run over the tiles of the whole batch, so that small images (the U-Net's 256-channel
// 20x20 bottom: 25 tiles) still give each GEMM enough columns: with ~25 columns OpenBLAS spends
// as long packing U[xi] as multiplying.
Tiling winograd::tiling(const Conv2dShape& s) {
  Tiling t;
  t.tiles_h = ceil_div(s.h, 4);
  t.tiles_w = ceil_div(s.w, 4);
  t.tiles = t.tiles_h * t.tiles_w;
  t.total = t.tiles * s.n;
  int64_t b = kBlockFloats / (int64_t(kXi) * (s.c + s.k));
  b = std::max(kMinBlockTiles, b / 16 * 16);
  if (b >= t.total) {
    b = t.total;
  } else {
    // Equal blocks, an even number of them: with 64 + 36 tiles (256 channels at 20x20) or 7
    // blocks on our 2 cores, one thread waited for the other a third of the time. The count
    // depends only on the shape, never on the threads, so the results do not either.
    const int64_t nb = (ceil_div(t.total, b) + 1) / 2 * 2;
    b = ceil_div(t.total, nb);
  }
  t.block = b;
  t.blocks = ceil_div(t.total, b);
  return t;
}

namespace {

// Per-thread floats: V (36 c T), M (36 k T), and scratch for the transforms.
struct ThreadLayout {
  int64_t v, m, h;  // offsets
  int64_t total;
};

ThreadLayout thread_layout(const Conv2dShape& s, int64_t block) {
  ThreadLayout l;
  l.v = 0;
  l.m = l.v + round_up(int64_t(kXi) * s.c * block, 16);
  l.h = l.m + round_up(int64_t(kXi) * s.k * block, 16);
  l.total =
      l.h + round_up(int64_t(kXi) * block, 16);  // H (6 x 6 x T) on input, Z (4 x 6 x T) on output
  return l;
}

}  // namespace

size_t winograd_workspace_floats(const Conv2dShape& s) {
  const Tiling t = tiling(s);
  return size_t(round_up(int64_t(kXi) * s.k * s.c, 16)) +
         size_t(threads()) * size_t(thread_layout(s, t.block).total);
}

void winograd_forward(const float* x, const float* w, const float* bias, float* y,
                      const Conv2dShape& s, float* workspace) {
  ICH_CHECK(winograd_eligible(s), "winograd_forward needs a 3x3 kernel, stride 1 and pad 1");
  const Tiling tl = tiling(s);
  const ThreadLayout lay = thread_layout(s, tl.block);
  float* u = workspace;
  float* per_thread = workspace + round_up(int64_t(kXi) * s.k * s.c, 16);
  transform_weights(w, u, s.k, s.c);

  const int64_t T = tl.block;
  const int64_t plane = int64_t(s.h) * s.w;
  const int64_t tasks = tl.blocks;
  const double flops = 2.0 * kXi * double(s.k) * s.c * double(tl.total);
#pragma omp parallel for schedule(static) if (tasks > 1 && flops > 4e6)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t t0 = task * T;
    const int64_t t1 = std::min(tl.total, t0 + T);
    const int64_t nt_block = t1 - t0;
    float* mine = per_thread + int64_t(omp_get_thread_num()) * lay.total;
    float* v = mine + lay.v;
    float* m = mine + lay.m;
    const int64_t v_xi = int64_t(s.c) * T;  // V[xi] (c, T), leading dimension T
    const int64_t m_xi = int64_t(s.k) * T;  // M[xi] (k, T)

    float* hz = mine + lay.h;  // H (36 x T) on the way in, Z (24 x T) on the way out
    input_block(x, s, tl, t0, t1, hz, v);
    for (int xi = 0; xi < kXi; ++xi)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.k, static_cast<int>(nt_block), s.c,
                  1.0f, u + int64_t(xi) * s.k * s.c, s.c, v + xi * v_xi, static_cast<int>(T), 0.0f,
                  m + xi * m_xi, static_cast<int>(T));
    for (int ko = 0; ko < s.k; ++ko) {
      output_columns(m + int64_t(ko) * T, m_xi, nt_block, hz, T);
      const float b = bias != nullptr ? bias[ko] : 0.0f;
      for (int64_t t = t0; t < t1;) {
        const Segment g = segment_at(tl, t, t1);
        output_rows_segment(hz + (t - t0), T, s, g.ty, g.tx0, g.nt, b,
                            y + (g.img * s.k + ko) * plane);
        t += g.nt;
      }
    }
  }
}

}  // namespace ich::cpu
