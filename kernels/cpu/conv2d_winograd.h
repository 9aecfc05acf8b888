// What the three files of the CPU Winograd F(4x4, 3x3) convolution share (kernels/cpu only):
//   conv2d_winograd.cpp             the tiling, the forward convolution
//   conv2d_winograd_transforms.cpp  the weight, input and output transforms
//   conv2d_winograd_wgrad.cpp       the weight gradient and its transforms
// The algorithm and its layouts are described at the top of conv2d_winograd.cpp.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "core/ceil_div.h"
#include "kernels/backend.h"

namespace ich::cpu::winograd {

constexpr int kAlpha = 6;             // input tile side: 4 + 3 - 1
constexpr int kXi = kAlpha * kAlpha;  // 36 transformed positions
// V + M of one block (36 (c + k) T floats) aim at this many floats (2 MiB): a GEMM touches one
// xi at a time (1/36 of it), the transforms stream through all of it.
constexpr int64_t kBlockFloats = int64_t(1) << 19;
// Fewer GEMM columns than this make OpenBLAS's packing of U[xi] (k x c, once per call) cost
// more than the multiplication; V + M then outgrow L2, but one GEMM's share still fits.
constexpr int64_t kMinBlockTiles = 64;

inline int threads() {
  return omp_get_max_threads();
}

struct Tiling {
  int64_t tiles_h, tiles_w, tiles;  // per image
  int64_t total;                    // over the batch: tile number = image * tiles + row-major
  int64_t block;                    // tiles per block (the GEMM's column count, at most)
  int64_t blocks;                   // over the batch
};

// The tiles and blocks of a shape (conv2d_winograd.cpp); they depend only on the shape, never on
// the number of threads, and so do the results.
Tiling tiling(const Conv2dShape& s);

// A segment: the part of one tile row (of one image) inside a block; tile t starts one that runs
// to the end of its row or to the block's end t1, whichever comes first.
struct Segment {
  int64_t img, ty, tx0, nt;
};
inline Segment segment_at(const Tiling& tl, int64_t t, int64_t t1) {
  const int64_t img = t / tl.tiles, local = t % tl.tiles;
  const int64_t ty = local / tl.tiles_w, tx0 = local % tl.tiles_w;
  const int64_t seg_end = std::min(t1, img * tl.tiles + (ty + 1) * tl.tiles_w);
  return Segment{img, ty, tx0, seg_end - t};
}

// ---- conv2d_winograd_transforms.cpp
// U[xi][ko][ci] = (G g G^T)[xi] for w (k, c, 3, 3).
void transform_weights(const float* w, float* u, int k, int c);
// V[xi] (c, T) = B^T d B of the tiles [t0, t1) of a block (T = tl.block columns), channel by
// channel through hbuf (36 x T floats): the input transform of the forward and of the weight
// gradient.
void input_block(const float* x, const Conv2dShape& s, const Tiling& tl, int64_t t0, int64_t t1,
                 float* hbuf, float* v);
// The vertical half of the output transform of channel ko over all n tiles of a block:
// M[xi][ko][u] -> Z[i][j] (4 x 6), zbuf[(i * 6 + j) * ldz + u].
void output_columns(const float* mk, int64_t m_xi_stride, int64_t n, float* zbuf, int64_t ldz);
// The horizontal half for one segment (its tiles at zbuf + u), plus the bias, into channel yk
// (h, w) of the image.
void output_rows_segment(const float* zbuf, int64_t ldz, const Conv2dShape& s, int64_t ty,
                         int64_t tx0, int64_t nt, float bias, float* yk);

}  // namespace ich::cpu::winograd
