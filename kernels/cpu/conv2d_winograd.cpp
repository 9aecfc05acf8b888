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
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
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

namespace {

// ICH_CONV_ALGO's choice for an eligible shape; auto takes Winograd from min_channels up.
bool winograd_chosen(const Conv2dShape& s, int min_channels) {
  if (!winograd_eligible(s)) return false;
  switch (conv_algo()) {
    case ConvAlgo::im2col:
      return false;
    case ConvAlgo::winograd:
      return true;
    case ConvAlgo::automatic:
      return std::min(s.c, s.k) >= min_channels;
  }
  return false;
}

}  // namespace

bool use_winograd(const Conv2dShape& s) {
  return winograd_chosen(s, kWinogradMinChannels);
}

bool use_winograd_weight(const Conv2dShape& s) {
  return winograd_chosen(s, kWinogradWeightMinChannels);
}

// ---- the algorithm

namespace {

constexpr int kAlpha = 6;             // input tile side: 4 + 3 - 1
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

int64_t round16(int64_t n) {
  return (n + 15) / 16 * 16;
}

// Per-thread floats: V (36 c T), M (36 k T), and scratch for the transforms.
struct ThreadLayout {
  int64_t v, m, h;  // offsets
  int64_t total;
};

ThreadLayout thread_layout(const Conv2dShape& s, int64_t block) {
  ThreadLayout l;
  l.v = 0;
  l.m = l.v + round16(int64_t(kXi) * s.c * block);
  l.h = l.m + round16(int64_t(kXi) * s.k * block);
  l.total = l.h + round16(int64_t(kXi) * block);  // H (6 x 6 x T) on input, Z (4 x 6 x T) on output
  return l;
}

// ---- weight transform: U[xi][ko][ci] = (G g G^T)[xi], in double, rounded once.
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
// The 36 outputs of one (ko, ci) lie k c floats apart, a power of two for the U-Net: storing
// them directly made every store miss (all 36 in one cache set), and this transform took a
// third of a 256-channel 20x20 convolution. So chunks of kChunk channels go through a small
// buffer and are copied out row by row.
void transform_weights(const float* w, float* u, int k, int c) {
  constexpr int kChunk = 64;
  const int64_t kc = int64_t(k) * c;
  const double flops = 200.0 * double(kc);
  constexpr double r4 = 1.0 / 4.0, r6 = 1.0 / 6.0, r12 = 1.0 / 12.0, r24 = 1.0 / 24.0;
#pragma omp parallel for schedule(static) if (flops > 4e6)
  for (int ko = 0; ko < k; ++ko) {
    float buf[kXi * kChunk];  // buf[xi * kChunk + cc]
    for (int c0 = 0; c0 < c; c0 += kChunk) {
      const int nc = std::min(kChunk, c - c0);
      for (int cc = 0; cc < nc; ++cc) {
        const float* g = w + (int64_t(ko) * c + c0 + cc) * 9;  // (3, 3)
        double gg[6][3];                                       // G g
        for (int j = 0; j < 3; ++j) {
          const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
          gg[0][j] = g0 * r4;
          gg[1][j] = -(g0 + g1 + g2) * r6;
          gg[2][j] = -(g0 - g1 + g2) * r6;
          gg[3][j] = g0 * r24 + g1 * r12 + g2 * r6;
          gg[4][j] = g0 * r24 - g1 * r12 + g2 * r6;
          gg[5][j] = g2;
        }
        for (int i = 0; i < 6; ++i) {  // (G g) G^T
          const double g0 = gg[i][0], g1 = gg[i][1], g2 = gg[i][2];
          float* o = buf + i * 6 * kChunk + cc;
          o[0] = static_cast<float>(g0 * r4);
          o[kChunk] = static_cast<float>(-(g0 + g1 + g2) * r6);
          o[2 * kChunk] = static_cast<float>(-(g0 - g1 + g2) * r6);
          o[3 * kChunk] = static_cast<float>(g0 * r24 + g1 * r12 + g2 * r6);
          o[4 * kChunk] = static_cast<float>(g0 * r24 - g1 * r12 + g2 * r6);
          o[5 * kChunk] = static_cast<float>(g2);
        }
      }
      for (int xi = 0; xi < kXi; ++xi)
        std::memcpy(u + xi * kc + int64_t(ko) * c + c0, buf + xi * kChunk,
                    sizeof(float) * size_t(nc));
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

// B^T applied to each of n input rows of 6 values that overlap by 2: tile u reads x[4 u .. 4 u +
// 5]. Strided loads that g++ vectorises (permutes); no copy of the row is needed.
__attribute__((noinline)) void input_row(const float* __restrict x, float* __restrict o0,
                                         float* __restrict o1, float* __restrict o2,
                                         float* __restrict o3, float* __restrict o4,
                                         float* __restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; ++u) {
    const float* d = x + 4 * u;
    const float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], d5 = d[5];
    const float a = d4 - 4.0f * d2;
    const float b = d3 - 4.0f * d1;
    const float c = d4 - d2;
    const float e = 2.0f * (d3 - d1);
    o0[u] = 4.0f * d0 - 5.0f * d2 + d4;
    o1[u] = a + b;
    o2[u] = a - b;
    o3[u] = c + e;
    o4[u] = c - e;
    o5[u] = 4.0f * d1 - 5.0f * d3 + d5;
  }
}

int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The horizontal half of the input transform for the nt tiles of one segment (tile row ty,
// tiles tx0 ..) of one channel xc (h, w): hbuf[(r * 6 + j) * ldh + u] is row r of tile u.
void input_rows_segment(const float* xc, const Conv2dShape& s, int64_t ty, int64_t tx0, int64_t nt,
                        float* hbuf, int64_t ldh) {
  // Tiles whose six columns 4 tx - 1 .. 4 tx + 4 lie inside the row: tx in [1, (w - 5) / 4].
  const int64_t u_lo = std::min(nt, std::max<int64_t>(0, 1 - tx0));
  const int64_t u_hi = std::max(u_lo, std::min(nt, floor_div(s.w - 5, 4) + 1 - tx0));
  for (int r = 0; r < kAlpha; ++r) {
    const int64_t yy = 4 * ty - 1 + r;
    float* hr = hbuf + int64_t(r) * 6 * ldh;
    if (yy < 0 || yy >= s.h) {
      for (int j = 0; j < 6; ++j) std::memset(hr + j * ldh, 0, sizeof(float) * size_t(nt));
      continue;
    }
    const float* src = xc + yy * s.w;
    input_row(src + 4 * (tx0 + u_lo) - 1, hr + u_lo, hr + ldh + u_lo, hr + 2 * ldh + u_lo,
              hr + 3 * ldh + u_lo, hr + 4 * ldh + u_lo, hr + 5 * ldh + u_lo, u_hi - u_lo);
    // Edge tiles (the first and the last one or two of a row): through a zero-padded copy.
    for (int64_t u = 0; u < nt; ++u) {
      if (u == u_lo) u = u_hi;
      if (u >= nt) break;
      float d[6];
      for (int q = 0; q < 6; ++q) {
        const int64_t xx = 4 * (tx0 + u) - 1 + q;
        d[q] = xx >= 0 && xx < s.w ? src[xx] : 0.0f;
      }
      input_row(d, hr + u, hr + ldh + u, hr + 2 * ldh + u, hr + 3 * ldh + u, hr + 4 * ldh + u,
                hr + 5 * ldh + u, 1);
    }
  }
}

// The vertical half, over all n tiles of a block at once (longer vector loops than a segment):
// column j of the six rows -> V[i * 6 + j][ci][u] for i = 0..5.
void input_columns(const float* hbuf, int64_t ldh, float* v, int64_t v_xi_stride, int64_t n) {
  for (int j = 0; j < 6; ++j) {
    const float* h = hbuf + j * ldh;
    const int64_t rs = 6 * ldh;  // next row r
    float* o = v + j * v_xi_stride;
    const int64_t os = 6 * v_xi_stride;  // next i
    input_1d(h, h + rs, h + 2 * rs, h + 3 * rs, h + 4 * rs, h + 5 * rs, o, o + os, o + 2 * os,
             o + 3 * os, o + 4 * os, o + 5 * os, n);
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

// A^T applied to row i of Z for n full tiles, plus the bias, stored as 4 consecutive pixels per
// tile (strided stores that g++ vectorises).
__attribute__((noinline)) void output_row(const float* __restrict z0, const float* __restrict z1,
                                          const float* __restrict z2, const float* __restrict z3,
                                          const float* __restrict z4, const float* __restrict z5,
                                          float* __restrict out, int64_t n, float add) {
  for (int64_t u = 0; u < n; ++u) {
    const float sp = z1[u] + z2[u], sm = z1[u] - z2[u];
    const float tp = z3[u] + z4[u], tm = z3[u] - z4[u];
    float* o = out + 4 * u;
    o[0] = z0[u] + sp + tp + add;
    o[1] = sm + 2.0f * tm + add;
    o[2] = sp + 4.0f * tp + add;
    o[3] = sm + 8.0f * tm + z5[u] + add;
  }
}

// The vertical half of the output transform of channel ko over all n tiles of a block:
// M[xi][ko][u] -> Z[i][j] (4 x 6), zbuf[(i * 6 + j) * ldz + u].
void output_columns(const float* mk, int64_t m_xi_stride, int64_t n, float* zbuf, int64_t ldz) {
  for (int j = 0; j < 6; ++j) {
    const float* m = mk + j * m_xi_stride;
    const int64_t rs = 6 * m_xi_stride;
    float* z = zbuf + j * ldz;
    const int64_t zs = 6 * ldz;  // next i
    output_1d(m, m + rs, m + 2 * rs, m + 3 * rs, m + 4 * rs, m + 5 * rs, z, z + zs, z + 2 * zs,
              z + 3 * zs, n, 0.0f);
  }
}

// The horizontal half for one segment (its tiles at zbuf + u), plus the bias, into channel yk
// (h, w) of the image.
void output_rows_segment(const float* zbuf, int64_t ldz, const Conv2dShape& s, int64_t ty,
                         int64_t tx0, int64_t nt, float bias, float* yk) {
  // Horizontal, straight into the image. Only the last tile of a row and the last tile row can
  // be partial; a partial tile goes through a 4-pixel copy.
  const int64_t full = std::min<int64_t>(nt, s.w / 4 - tx0);  // tiles entirely inside the row
  for (int i = 0; i < 4; ++i) {
    const int64_t yy = 4 * ty + i;
    if (yy >= s.h) break;
    float* out = yk + yy * s.w + 4 * tx0;
    const float* z = zbuf + i * 6 * ldz;
    output_row(z, z + ldz, z + 2 * ldz, z + 3 * ldz, z + 4 * ldz, z + 5 * ldz, out, full, bias);
    for (int64_t u = full; u < nt; ++u) {
      float o[4];
      output_row(z + u, z + ldz + u, z + 2 * ldz + u, z + 3 * ldz + u, z + 4 * ldz + u,
                 z + 5 * ldz + u, o, 1, bias);
      for (int jj = 0; jj < 4 && 4 * (tx0 + u) + jj < s.w; ++jj) out[4 * u + jj] = o[jj];
    }
  }
}

// ---- weight gradient: dW[k][c] = sum over tiles of G^T [ Z (.) V ] G, where V = B^T d B is the
// forward's input transform and Z = A dY A^T the transformed 4x4 output-gradient tile (6x6).
//   A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]   (the transpose of A^T)

// A applied to (y0 .. y3), the 1-D output-gradient transform.
__attribute__((noinline)) void grad_1d(const float* __restrict y0, const float* __restrict y1,
                                       const float* __restrict y2, const float* __restrict y3,
                                       float* __restrict o0, float* __restrict o1,
                                       float* __restrict o2, float* __restrict o3,
                                       float* __restrict o4, float* __restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; ++u) {
    const float ep = y0[u] + y2[u], op = y1[u] + y3[u];
    const float e4 = y0[u] + 4.0f * y2[u], o8 = 2.0f * y1[u] + 8.0f * y3[u];
    o0[u] = y0[u];
    o1[u] = ep + op;
    o2[u] = ep - op;
    o3[u] = e4 + o8;
    o4[u] = e4 - o8;
    o5[u] = y3[u];
  }
}

// A applied to each of n rows of 4 consecutive pixels (tile u reads y[4 u .. 4 u + 3]).
__attribute__((noinline)) void grad_row(const float* __restrict y, float* __restrict o0,
                                        float* __restrict o1, float* __restrict o2,
                                        float* __restrict o3, float* __restrict o4,
                                        float* __restrict o5, int64_t n) {
  for (int64_t u = 0; u < n; ++u) {
    const float* d = y + 4 * u;
    const float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
    const float ep = d0 + d2, op = d1 + d3;
    const float e4 = d0 + 4.0f * d2, o8 = 2.0f * d1 + 8.0f * d3;
    o0[u] = d0;
    o1[u] = ep + op;
    o2[u] = ep - op;
    o3[u] = e4 + o8;
    o4[u] = e4 - o8;
    o5[u] = d3;
  }
}

// The horizontal half for one segment of channel dyk (h, w): gbuf[(i * 6 + j) * ldg + u] is row i
// (0..3) of tile u, zero below the image; pixels right of the image count as zero.
void grad_rows_segment(const float* dyk, const Conv2dShape& s, int64_t ty, int64_t tx0, int64_t nt,
                       float* gbuf, int64_t ldg) {
  const int64_t full = std::max<int64_t>(0, std::min<int64_t>(nt, s.w / 4 - tx0));
  for (int i = 0; i < 4; ++i) {
    const int64_t yy = 4 * ty + i;
    float* g = gbuf + int64_t(i) * 6 * ldg;
    if (yy >= s.h) {
      for (int j = 0; j < 6; ++j) std::memset(g + j * ldg, 0, sizeof(float) * size_t(nt));
      continue;
    }
    const float* src = dyk + yy * s.w + 4 * tx0;
    grad_row(src, g, g + ldg, g + 2 * ldg, g + 3 * ldg, g + 4 * ldg, g + 5 * ldg, full);
    for (int64_t u = full; u < nt; ++u) {  // the partial tile at the right edge
      float d[4];
      for (int q = 0; q < 4; ++q) d[q] = 4 * (tx0 + u) + q < s.w ? src[4 * u + q] : 0.0f;
      grad_row(d, g + u, g + ldg + u, g + 2 * ldg + u, g + 3 * ldg + u, g + 4 * ldg + u,
               g + 5 * ldg + u, 1);
    }
  }
}

// The vertical half over all n tiles of a block: column j of the four rows -> Z[i * 6 + j][ko][u].
void grad_columns(const float* gbuf, int64_t ldg, float* z, int64_t z_xi_stride, int64_t n) {
  for (int j = 0; j < 6; ++j) {
    const float* g = gbuf + j * ldg;
    const int64_t rs = 6 * ldg;
    float* o = z + j * z_xi_stride;
    const int64_t os = 6 * z_xi_stride;
    grad_1d(g, g + rs, g + 2 * rs, g + 3 * rs, o, o + os, o + 2 * os, o + 3 * os, o + 4 * os,
            o + 5 * os, n);
  }
}

// dw[ko][ci] (3, 3) = G^T M[.][ko][ci] G, in double. As in transform_weights, the 36 inputs of
// one (ko, ci) lie k c floats apart, so they are gathered through a buffer of kChunk channels.
void untransform_weight_grad(const float* m, float* dw, int k, int c) {
  constexpr int kChunk = 64;
  constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                              {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                              {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6},
                              {1.0 / 24, -1.0 / 12, 1.0 / 6},
                              {0, 0, 1}};
  const int64_t kc = int64_t(k) * c;
#pragma omp for schedule(static)
  for (int ko = 0; ko < k; ++ko) {
    float buf[kXi * kChunk];  // buf[xi * kChunk + cc]
    for (int c0 = 0; c0 < c; c0 += kChunk) {
      const int nc = std::min(kChunk, c - c0);
      for (int xi = 0; xi < kXi; ++xi)
        std::memcpy(buf + xi * kChunk, m + xi * kc + int64_t(ko) * c + c0,
                    sizeof(float) * size_t(nc));
      for (int cc = 0; cc < nc; ++cc) {
        double gm[3][6];  // G^T M
        for (int a = 0; a < 3; ++a)
          for (int j = 0; j < 6; ++j) {
            double acc = 0.0;
            for (int i = 0; i < 6; ++i) acc += G[i][a] * double(buf[(i * 6 + j) * kChunk + cc]);
            gm[a][j] = acc;
          }
        float* o = dw + (int64_t(ko) * c + c0 + cc) * 9;
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) {
            double acc = 0.0;
            for (int j = 0; j < 6; ++j) acc += gm[a][j] * G[j][b];
            o[a * 3 + b] = static_cast<float>(acc);
          }
      }
    }
  }
}

// The weight gradient's tiles are cut into a few groups fixed by the shape, each summed into its
// own partial M (36 k c) by one task, block after block (blocks as the forward's, V + Z near
// kBlockFloats); the partials are then added in group order. A first version ran all threads on
// each block (transforms split over channels, the 36 GEMMs over xi): three barriers per block,
// and while another process held one of the two cores every barrier waited for a time slice
// (10x slower at 16 channels). Groups need one synchronisation, at the end.
//
// Groups are handed out dynamically (which thread sums a group does not change its bits), so
// that a thread slowed by another process does not leave the other spinning: 8 groups while
// 36 k c is small, fewer as the partials grow (2 at 256 x 256: 2 x 9.4 MB).
constexpr int64_t kWeightPartialFloats = int64_t(1) << 19;
int64_t weight_groups_for(int64_t kc36) {
  if (kc36 <= kWeightPartialFloats) return 8;
  if (kc36 <= 4 * kWeightPartialFloats) return 4;
  return 2;
}

struct WeightPlan {
  Tiling tl;
  int64_t groups;
  int64_t m, per_thread;  // offsets: partial M's (groups x 36 k c), per-thread V, Z, scratch
  int64_t v, z, h;        // offsets inside a thread's part
  int64_t thread_floats, total;
};

WeightPlan weight_plan(const Conv2dShape& s) {
  WeightPlan p;
  p.tl = tiling(s);
  const int64_t kc36 = round16(int64_t(kXi) * s.k * s.c);
  p.groups = weight_groups_for(kc36);
  p.groups = std::max<int64_t>(1, std::min(p.groups, p.tl.blocks));
  const int64_t T = p.tl.block;
  p.m = 0;
  p.per_thread = p.groups * kc36;
  p.v = 0;
  p.z = round16(int64_t(kXi) * s.c * T);
  p.h = p.z + round16(int64_t(kXi) * s.k * T);
  p.thread_floats = p.h + round16(int64_t(kXi) * T);
  p.total = p.per_thread + int64_t(threads()) * p.thread_floats;
  return p;
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
    float* hz = mine + lay.h;  // H (36 x T) on the way in, Z (24 x T) on the way out
    for (int ci = 0; ci < s.c; ++ci) {
      for (int64_t t = t0; t < t1;) {
        const Segment g = segment_at(t);
        input_rows_segment(x + (g.img * s.c + ci) * plane, s, g.ty, g.tx0, g.nt, hz + (t - t0), T);
        t += g.nt;
      }
      input_columns(hz, T, v + int64_t(ci) * T, v_xi, nt_block);
    }
    for (int xi = 0; xi < kXi; ++xi)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.k, static_cast<int>(nt_block), s.c,
                  1.0f, u + int64_t(xi) * s.k * s.c, s.c, v + xi * v_xi, static_cast<int>(T), 0.0f,
                  m + xi * m_xi, static_cast<int>(T));
    for (int ko = 0; ko < s.k; ++ko) {
      output_columns(m + int64_t(ko) * T, m_xi, nt_block, hz, T);
      const float b = bias != nullptr ? bias[ko] : 0.0f;
      for (int64_t t = t0; t < t1;) {
        const Segment g = segment_at(t);
        output_rows_segment(hz + (t - t0), T, s, g.ty, g.tx0, g.nt, b,
                            y + (g.img * s.k + ko) * plane);
        t += g.nt;
      }
    }
  }
}

}  // namespace ich::cpu

namespace ich::cpu {

size_t winograd_backward_weight_workspace_floats(const Conv2dShape& s) {
  return size_t(weight_plan(s).total);
}

void winograd_backward_weight(const float* x, const float* dy, float* dw, const Conv2dShape& s,
                              float* workspace) {
  ICH_CHECK(winograd_eligible(s),
            "winograd_backward_weight needs a 3x3 kernel, stride 1 and pad 1");
  const WeightPlan p = weight_plan(s);
  const Tiling& tl = p.tl;
  const int64_t T = tl.block;
  const int64_t plane = int64_t(s.h) * s.w;
  const int64_t kc = int64_t(s.k) * s.c;
  const int64_t kc36 = round16(int64_t(kXi) * kc);
  const int64_t v_xi = int64_t(s.c) * T;  // V[xi] (c, T)
  const int64_t z_xi = int64_t(s.k) * T;  // Z[xi] (k, T)
  const double flops = 2.0 * kXi * double(kc) * double(tl.total);
  // Group g owns blocks [g blocks / groups, (g + 1) blocks / groups) and sums them, in order,
  // into its partial M_g[xi] (k, c) += Z[xi] V[xi]^T; nothing here depends on the threads.
#pragma omp parallel for schedule(dynamic, 1) if (p.groups > 1 && flops > 4e6)
  for (int64_t g = 0; g < p.groups; ++g) {
    float* mine = workspace + p.per_thread + int64_t(omp_get_thread_num()) * p.thread_floats;
    float* v = mine + p.v;
    float* z = mine + p.z;
    float* scratch = mine + p.h;  // H (36 x T) for x, G (24 x T) for dy
    float* m = workspace + p.m + g * kc36;
    const int64_t b_begin = g * tl.blocks / p.groups, b_end = (g + 1) * tl.blocks / p.groups;
    for (int64_t block = b_begin; block < b_end; ++block) {
      const int64_t t0 = block * T;
      const int64_t t1 = std::min(tl.total, t0 + T);
      const int64_t nt_block = t1 - t0;
      struct Segment {
        int64_t img, ty, tx0, nt;
      };
      auto segment_at = [&](int64_t t) {
        const int64_t img = t / tl.tiles, local = t % tl.tiles;
        const int64_t ty = local / tl.tiles_w, tx0 = local % tl.tiles_w;
        const int64_t seg_end = std::min(t1, img * tl.tiles + (ty + 1) * tl.tiles_w);
        return Segment{img, ty, tx0, seg_end - t};
      };
      for (int ci = 0; ci < s.c; ++ci) {
        for (int64_t t = t0; t < t1;) {
          const Segment sg = segment_at(t);
          input_rows_segment(x + (sg.img * s.c + ci) * plane, s, sg.ty, sg.tx0, sg.nt,
                             scratch + (t - t0), T);
          t += sg.nt;
        }
        input_columns(scratch, T, v + int64_t(ci) * T, v_xi, nt_block);
      }
      for (int ko = 0; ko < s.k; ++ko) {
        for (int64_t t = t0; t < t1;) {
          const Segment sg = segment_at(t);
          grad_rows_segment(dy + (sg.img * s.k + ko) * plane, s, sg.ty, sg.tx0, sg.nt,
                            scratch + (t - t0), T);
          t += sg.nt;
        }
        grad_columns(scratch, T, z + int64_t(ko) * T, z_xi, nt_block);
      }
      for (int xi = 0; xi < kXi; ++xi)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.k, s.c, static_cast<int>(nt_block),
                    1.0f, z + xi * z_xi, static_cast<int>(T), v + xi * v_xi, static_cast<int>(T),
                    block == b_begin ? 0.0f : 1.0f, m + xi * kc, s.c);
    }
  }
  // Partials added in group order into the first, then G^T M G (~40 flops per element of M: in
  // parallel only when that outweighs waking the other threads).
  float* m = workspace + p.m;
  const int64_t n36 = int64_t(kXi) * kc;
#pragma omp parallel if (n36 * p.groups > (int64_t(1) << 20))
  {
    if (p.groups > 1) {
#pragma omp for schedule(static)
      for (int64_t e = 0; e < n36; ++e) {
        float acc = m[e];
        for (int64_t g = 1; g < p.groups; ++g) acc += m[g * kc36 + e];
        m[e] = acc;
      }
    }
    untransform_weight_grad(m, dw, s.k, s.c);
  }
}

}  // namespace ich::cpu
