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
// ("segments"). Blocks are sized so that V + M of one block stay near L2 (at least 64 tiles);
// OpenMP runs over the blocks, each thread with its own V, M and scratch. Every output element is produced by one task whose arithmetic depends
// only on the shape, so the result is the same for any number of threads.
//
// The transforms run one segment of tiles at a time with the tile as the innermost, contiguous
// loop index, so that the compiler vectorises them: an input row is first split into its four
// phases (x[4u + m], m = 0..3), after which the 6 values of tile u are P0[u] .. P3[u], P0[u+1],
// P1[u+1].
//
// Accuracy: the transforms multiply by up to 8 (A) and 5 (B) and divide by 24 (G), so the
// rounding error is a few times that of the direct sum (measured: docs/PERFORMANCE.md).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cblas.h>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/conv_algo.h"
#include "kernels/cpu/cpu_backend.h"

namespace ich::cpu {

// ---- the setting

ConvAlgo parse_conv_algo(const char* value) {
  if (std::strcmp(value, "auto") == 0) return ConvAlgo::automatic;
  if (std::strcmp(value, "im2col") == 0) return ConvAlgo::im2col;
  if (std::strcmp(value, "winograd") == 0) return ConvAlgo::winograd;
  ICH_FAIL("ICH_CONV_ALGO is '" << value << "'; use auto, im2col or winograd");
}

const char* conv_algo_name(ConvAlgo algo) {
  switch (algo) {
    case ConvAlgo::automatic:
      return "auto";
    case ConvAlgo::im2col:
      return "im2col";
    case ConvAlgo::winograd:
      return "winograd";
  }
  return "?";
}

namespace {

constexpr int kNoOverride = -1;
std::atomic<int> g_override{kNoOverride};

ConvAlgo from_environment() {
  // Read once; a bad value throws here and again on the next call (the static stays unset).
  static const ConvAlgo algo = [] {
    const char* v = std::getenv("ICH_CONV_ALGO");
    return v == nullptr || *v == '\0' ? ConvAlgo::automatic : parse_conv_algo(v);
  }();
  return algo;
}

}  // namespace

ConvAlgo conv_algo() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o == kNoOverride ? from_environment() : static_cast<ConvAlgo>(o);
}

void set_conv_algo(ConvAlgo algo) {
  g_override.store(static_cast<int>(algo), std::memory_order_relaxed);
}

void clear_conv_algo_override() {
  g_override.store(kNoOverride, std::memory_order_relaxed);
}

bool winograd_eligible(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 1 &&
         s.pad_w == 1;
}

bool use_winograd(const Conv2dShape& s) {
  if (!winograd_eligible(s)) return false;
  switch (conv_algo()) {
    case ConvAlgo::im2col:
      return false;
    case ConvAlgo::winograd:
      return true;
    case ConvAlgo::automatic:
      return std::min(s.c, s.k) >= kWinogradMinChannels;
  }
  return false;
}

// ---- the algorithm

namespace {

constexpr int kAlpha = 6;          // input tile side: 4 + 3 - 1
constexpr int kXi = kAlpha * kAlpha;  // 36 transformed positions
// V + M of one block (36 (c + k) T floats) aim at this many floats (2 MiB): a GEMM touches one
// xi at a time (1/36 of it), the transforms stream through all of it.
constexpr int64_t kBlockFloats = int64_t(1) << 19;
// Fewer GEMM columns than this make OpenBLAS's packing of U[xi] (k x c, once per call) cost
// more than the multiplication; V + M then outgrow L2, but one GEMM's share still fits.
constexpr int64_t kMinBlockTiles = 64;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

int threads() {
  return omp_get_max_threads();
}

struct Tiling {
  int64_t tiles_h, tiles_w, tiles;  // per image
  int64_t total;                    // over the batch: tile number = image * tiles + row-major
  int64_t block;                    // tiles per block (the GEMM's column count, at most)
  int64_t blocks;                   // over the batch
};

// Blocks run over the tiles of the whole batch, so that small images (the U-Net's 256-channel
// 20x20 bottom: 25 tiles) still give each GEMM enough columns: with ~25 columns OpenBLAS spends
// as long packing U[xi] as multiplying.
Tiling tiling(const Conv2dShape& s) {
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
    const int64_t nb = ceil_div(t.total, b);  // even out the blocks: no sliver at the end
    b = std::min(t.total, ceil_div(ceil_div(t.total, nb), 16) * 16);
  }
  t.block = b;
  t.blocks = ceil_div(t.total, b);
  return t;
}

int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}

// Per-thread floats: V (36 c T), M (36 k T), and scratch for the transforms.
struct ThreadLayout {
  int64_t v, m, row, phases, h;  // offsets
  int64_t total;
};

ThreadLayout thread_layout(const Conv2dShape& s, int64_t block) {
  ThreadLayout l;
  l.v = 0;
  l.m = l.v + round16(int64_t(kXi) * s.c * block);
  l.row = l.m + round16(int64_t(kXi) * s.k * block);
  l.phases = l.row + round16(4 * block + 8);       // one padded input row
  l.h = l.phases + round16(4 * (block + 1));       // its four phases
  l.total = l.h + round16(40 * block);  // H (6 x 6 x T) on input; Z (4 x 6 x T) + Y (4 x 4 x T)
  return l;
}

// ---- weight transform: U[xi][ko][ci] = (G g G^T)[xi], in double, rounded once.
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
void transform_weights(const float* w, float* u, int k, int c) {
  const int64_t kc = int64_t(k) * c;
  const double flops = 200.0 * double(kc);
#pragma omp parallel for schedule(static) if (flops > 4e6)
  for (int ko = 0; ko < k; ++ko) {
    for (int ci = 0; ci < c; ++ci) {
      const float* g = w + (int64_t(ko) * c + ci) * 9;  // (3, 3)
      double gg[6][3];                                   // G g
      for (int j = 0; j < 3; ++j) {
        const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
        gg[0][j] = g0 / 4.0;
        gg[1][j] = -(g0 + g1 + g2) / 6.0;
        gg[2][j] = -(g0 - g1 + g2) / 6.0;
        gg[3][j] = g0 / 24.0 + g1 / 12.0 + g2 / 6.0;
        gg[4][j] = g0 / 24.0 - g1 / 12.0 + g2 / 6.0;
        gg[5][j] = g2;
      }
      for (int i = 0; i < 6; ++i) {  // (G g) G^T
        const double g0 = gg[i][0], g1 = gg[i][1], g2 = gg[i][2];
        const double row[6] = {g0 / 4.0,
                               -(g0 + g1 + g2) / 6.0,
                               -(g0 - g1 + g2) / 6.0,
                               g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
                               g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
                               g2};
        for (int j = 0; j < 6; ++j)
          u[int64_t(i * 6 + j) * kc + int64_t(ko) * c + ci] = static_cast<float>(row[j]);
      }
    }
  }
}

// B^T applied to (d0 .. d5), the 1-D input transform:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//          0 4 0 -5 0 1]
// Separate restrict pointers per stream: with one base and a stride g++ cannot prove that the
// six streams do not overlap and does not vectorise.
__attribute__((noinline)) void input_1d(const float* __restrict d0, const float* __restrict d1,
                                        const float* __restrict d2, const float* __restrict d3,
                                        const float* __restrict d4, const float* __restrict d5,
                                        float* __restrict o0, float* __restrict o1,
                                        float* __restrict o2, float* __restrict o3,
                                        float* __restrict o4, float* __restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; ++u) {
    const float a = d4[u] - 4.0f * d2[u];  // shared terms
    const float b = d3[u] - 4.0f * d1[u];
    const float c = d4[u] - d2[u];
    const float e = 2.0f * (d3[u] - d1[u]);
    o0[u] = 4.0f * d0[u] - 5.0f * d2[u] + d4[u];
    o1[u] = a + b;
    o2[u] = a - b;
    o3[u] = c + e;
    o4[u] = c - e;
    o5[u] = 4.0f * d1[u] - 5.0f * d3[u] + d5[u];
  }
}

// V[xi][ci][tt0 + u] for the nt tiles u of one segment (tile row ty, tiles tx0 ..), channel ci
// of one image x (c, h, w). ldv = T (the block's column stride).
void input_transform_segment(const float* xc, const Conv2dShape& s, int64_t ty, int64_t tx0,
                             int64_t nt, float* v, int64_t v_xi_stride, float* row, float* phases,
                             float* hbuf, int64_t ldh) {
  // hbuf[(r * 6 + j) * ldh + u]: row r of tile u after the horizontal transform.
  const int64_t x_begin = 4 * tx0 - 1;  // the first input column of the segment
  const int64_t len = 4 * (nt + 1);     // the phases read up to 4 nt + 1; 4 (nt + 1) keeps them whole
  float* p0 = phases;
  float* p1 = phases + (nt + 1);
  float* p2 = phases + 2 * (nt + 1);
  float* p3 = phases + 3 * (nt + 1);
  for (int r = 0; r < kAlpha; ++r) {
    const int64_t yy = 4 * ty - 1 + r;
    float* hr = hbuf + int64_t(r) * 6 * ldh;
    if (yy < 0 || yy >= s.h) {
      for (int j = 0; j < 6; ++j) std::memset(hr + j * ldh, 0, sizeof(float) * size_t(nt));
      continue;
    }
    const float* src = xc + yy * s.w;
    const int64_t lo = std::max<int64_t>(0, -x_begin);                  // first q inside
    const int64_t hi = std::max(lo, std::min<int64_t>(len, s.w - x_begin));  // one past the last
    for (int64_t q = 0; q < lo; ++q) row[q] = 0.0f;
    std::memcpy(row + lo, src + x_begin + lo, sizeof(float) * size_t(hi - lo));
    for (int64_t q = hi; q < len; ++q) row[q] = 0.0f;
    for (int64_t u = 0; u <= nt; ++u) {
      p0[u] = row[4 * u];
      p1[u] = row[4 * u + 1];
      p2[u] = row[4 * u + 2];
      p3[u] = row[4 * u + 3];
    }
    input_1d(p0, p1, p2, p3, p0 + 1, p1 + 1, hr, hr + ldh, hr + 2 * ldh, hr + 3 * ldh,
             hr + 4 * ldh, hr + 5 * ldh, nt);
  }
  // Vertical: column j of the six rows -> V[(i * 6 + j)] for i = 0..5.
  for (int j = 0; j < 6; ++j) {
    const float* h = hbuf + j * ldh;
    const int64_t rs = 6 * ldh;  // next row r
    float* o = v + j * v_xi_stride;
    const int64_t os = 6 * v_xi_stride;  // next i
    input_1d(h, h + rs, h + 2 * rs, h + 3 * rs, h + 4 * rs, h + 5 * rs, o, o + os, o + 2 * os,
             o + 3 * os, o + 4 * os, o + 5 * os, nt);
  }
}

// A^T applied to (m0 .. m5), the 1-D output transform:
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
__attribute__((noinline)) void output_1d(const float* __restrict m0, const float* __restrict m1,
                                         const float* __restrict m2, const float* __restrict m3,
                                         const float* __restrict m4, const float* __restrict m5,
                                         float* __restrict o0, float* __restrict o1,
                                         float* __restrict o2, float* __restrict o3, int64_t n,
                                         float add) {
  for (int64_t u = 0; u < n; ++u) {
    const float sp = m1[u] + m2[u], sm = m1[u] - m2[u];
    const float tp = m3[u] + m4[u], tm = m3[u] - m4[u];
    o0[u] = m0[u] + sp + tp + add;
    o1[u] = sm + 2.0f * tm + add;
    o2[u] = sp + 4.0f * tp + add;
    o3[u] = sm + 8.0f * tm + m5[u] + add;
  }
}

// Output channel ko of one segment: M[xi][ko][tt0 + u] -> y (h, w) of that channel.
void output_transform_segment(const float* mk, int64_t m_xi_stride, const Conv2dShape& s,
                              int64_t ty, int64_t tx0, int64_t nt, float bias, float* yk,
                              float* zbuf, int64_t ldz) {
  // Vertical: column j of the 6x6 -> Z[i][j] (4 x 6), zbuf[(i * 6 + j) * ldz + u].
  for (int j = 0; j < 6; ++j) {
    const float* m = mk + j * m_xi_stride;
    const int64_t rs = 6 * m_xi_stride;
    float* z = zbuf + j * ldz;
    const int64_t zs = 6 * ldz;  // next i
    output_1d(m, m + rs, m + 2 * rs, m + 3 * rs, m + 4 * rs, m + 5 * rs, z, z + zs, z + 2 * zs,
              z + 3 * zs, nt, 0.0f);
  }
  // Horizontal: row i of Z -> Y[i][jj], into zbuf's own rows i * 6 + (0..3) is unsafe (read and
  // written in one pass), so Y goes after Z: ybuf[(i * 4 + jj) * ldz + u].
  float* ybuf = zbuf + 24 * ldz;
  for (int i = 0; i < 4; ++i) {
    const float* z = zbuf + i * 6 * ldz;
    float* o = ybuf + i * 4 * ldz;
    output_1d(z, z + ldz, z + 2 * ldz, z + 3 * ldz, z + 4 * ldz, z + 5 * ldz, o, o + ldz,
              o + 2 * ldz, o + 3 * ldz, nt, bias);
  }
  // Scatter into the image; only the last tile of a row and the last tile row can be partial.
  const int64_t full = std::min<int64_t>(nt, s.w / 4 - tx0);  // tiles entirely inside the row
  for (int i = 0; i < 4; ++i) {
    const int64_t yy = 4 * ty + i;
    if (yy >= s.h) break;
    float* out = yk + yy * s.w + 4 * tx0;
    const float* y0 = ybuf + (i * 4) * ldz;
    const float* y1 = y0 + ldz;
    const float* y2 = y1 + ldz;
    const float* y3 = y2 + ldz;
    for (int64_t u = 0; u < full; ++u) {
      out[4 * u] = y0[u];
      out[4 * u + 1] = y1[u];
      out[4 * u + 2] = y2[u];
      out[4 * u + 3] = y3[u];
    }
    for (int64_t u = std::max<int64_t>(full, 0); u < nt; ++u) {
      const float* ys[4] = {y0, y1, y2, y3};
      for (int jj = 0; jj < 4 && 4 * (tx0 + u) + jj < s.w; ++jj) out[4 * u + jj] = ys[jj][u];
    }
  }
}

}  // namespace

size_t winograd_workspace_floats(const Conv2dShape& s) {
  const Tiling t = tiling(s);
  return size_t(round16(int64_t(kXi) * s.k * s.c)) +
         size_t(threads()) * size_t(thread_layout(s, t.block).total);
}

void winograd_forward(const float* x, const float* w, const float* bias, float* y,
                      const Conv2dShape& s, float* workspace) {
  ICH_CHECK(winograd_eligible(s), "winograd_forward needs a 3x3 kernel, stride 1 and pad 1");
  const Tiling tl = tiling(s);
  const ThreadLayout lay = thread_layout(s, tl.block);
  float* u = workspace;
  float* per_thread = workspace + round16(int64_t(kXi) * s.k * s.c);
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

    // A segment is the part of one tile row (of one image) in the block.
    struct Segment {
      int64_t img, ty, tx0, nt;
    };
    auto segment_at = [&](int64_t t) {
      const int64_t img = t / tl.tiles, local = t % tl.tiles;
      const int64_t ty = local / tl.tiles_w, tx0 = local % tl.tiles_w;
      const int64_t seg_end = std::min(t1, img * tl.tiles + (ty + 1) * tl.tiles_w);
      return Segment{img, ty, tx0, seg_end - t};
    };
    for (int64_t t = t0; t < t1;) {
      const Segment g = segment_at(t);
      const float* x_img = x + g.img * s.c * plane;
      for (int ci = 0; ci < s.c; ++ci)
        input_transform_segment(x_img + ci * plane, s, g.ty, g.tx0, g.nt,
                                v + int64_t(ci) * T + (t - t0), v_xi, mine + lay.row,
                                mine + lay.phases, mine + lay.h, T);
      t += g.nt;
    }
    for (int xi = 0; xi < kXi; ++xi)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.k, static_cast<int>(nt_block), s.c,
                  1.0f, u + int64_t(xi) * s.k * s.c, s.c, v + xi * v_xi, static_cast<int>(T), 0.0f,
                  m + xi * m_xi, static_cast<int>(T));
    for (int64_t t = t0; t < t1;) {
      const Segment g = segment_at(t);
      float* y_img = y + g.img * s.k * plane;
      for (int ko = 0; ko < s.k; ++ko)
        output_transform_segment(m + int64_t(ko) * T + (t - t0), m_xi, s, g.ty, g.tx0, g.nt,
                                 bias != nullptr ? bias[ko] : 0.0f, y_img + ko * plane,
                                 mine + lay.h, T);
      t += g.nt;
    }
  }
}

}  // namespace ich::cpu
