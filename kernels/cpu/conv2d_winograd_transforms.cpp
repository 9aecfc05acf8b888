// The transforms of the CPU Winograd F(4x4, 3x3) convolution (conv2d_winograd.cpp describes the
// algorithm): the weights' G g G^T, the input's B^T d B and the output's A^T M A, each run one
// segment of tiles at a time with the tile as the innermost loop index, so that they vectorise
// (this file is built with -O3, kernels/CMakeLists.txt).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/conv2d_winograd.h"

namespace ich::cpu::winograd {

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

namespace {

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

}  // namespace

void input_block(const float* x, const Conv2dShape& s, const Tiling& tl, int64_t t0, int64_t t1,
                 float* hbuf, float* v) {
  const int64_t T = tl.block;
  const int64_t plane = int64_t(s.h) * s.w;
  const int64_t v_xi = int64_t(s.c) * T;  // V[xi] (c, T), leading dimension T
  for (int ci = 0; ci < s.c; ++ci) {
    for (int64_t t = t0; t < t1;) {
      const Segment g = segment_at(tl, t, t1);
      input_rows_segment(x + (g.img * s.c + ci) * plane, s, g.ty, g.tx0, g.nt, hbuf + (t - t0), T);
      t += g.nt;
    }
    input_columns(hbuf, T, v + int64_t(ci) * T, v_xi, t1 - t0);
  }
}

namespace {

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

}  // namespace

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

}  // namespace ich::cpu::winograd
