// The weight gradient of the CPU Winograd F(4x4, 3x3) convolution (conv2d_winograd.cpp describes
// the algorithm): it reuses the forward's input transform V = B^T d B and adds the transform of
// the output gradient Z = A dY A^T (6x6 per tile), then
//   dW[k][c] = G^T [ sum over tiles Z (.) V ] G.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/conv_algo.h"

namespace ich::cpu {

using namespace winograd;

namespace {

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
  const int64_t kc36 = round_up(int64_t(kXi) * s.k * s.c, 16);
  p.groups = weight_groups_for(kc36);
  p.groups = std::max<int64_t>(1, std::min(p.groups, p.tl.blocks));
  const int64_t T = p.tl.block;
  p.m = 0;
  p.per_thread = p.groups * kc36;
  p.v = 0;
  p.z = round_up(int64_t(kXi) * s.c * T, 16);
  p.h = p.z + round_up(int64_t(kXi) * s.k * T, 16);
  p.thread_floats = p.h + round_up(int64_t(kXi) * T, 16);
  p.total = p.per_thread + int64_t(threads()) * p.thread_floats;
  return p;
}

}  // namespace

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
  const int64_t kc36 = round_up(int64_t(kXi) * kc, 16);
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
      input_block(x, s, tl, t0, t1, scratch, v);
      for (int ko = 0; ko < s.k; ++ko) {
        for (int64_t t = t0; t < t1;) {
          const Segment sg = segment_at(tl, t, t1);
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
