// GEMM, row-major: C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C, with row strides
// lda / ldb / ldc as stored. beta == 0 means C is not read (it may hold NaN), as in BLAS.
//
// Two implementations behind CudaBackend::gemm:
//   ours    a tiled shared-memory SGEMM: a block of 16x16 threads computes a 64x64 tile of C,
//           stepping through k in slices of 16; each thread owns a 4x4 register tile whose
//           rows and columns are 16 apart, so the loads from shared memory of a warp hit
//           consecutive addresses. The transposes are folded into the tile loads. Always used
//           by cuda-emu; on a GPU when options().gemm == GemmImpl::ours.
//   cuBLAS  (nvcc only, the default on a GPU) with the operands swapped: a row-major matrix
//           is the column-major matrix of its transpose, so C^T = op(B)^T op(A)^T is one
//           column-major sgemm on the same pointers, no transposed copies.
// Results differ from the CPU's OpenBLAS only by summation order (and fused multiply-adds
// under nvcc), so parity is by NMSE.
#include "kernels/cuda/cuda_backend.h"

namespace ich::ICH_CUDA_NS {

constexpr int kTile = 64;                     // rows and columns of C per block
constexpr int kSlice = 16;                    // k per step
constexpr int kThreadsSide = 16;              // the block is kThreadsSide x kThreadsSide threads
constexpr int kMicro = kTile / kThreadsSide;  // 4x4 outputs per thread

// ---- kernels

// One instance per transpose combination, so the tile loads carry no run-time branch.
template <bool kTransA, bool kTransB>
__global__ void __launch_bounds__(kThreadsSide* kThreadsSide)
    sgemm_tiled_kernel(int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                       int ldb, float beta, float* c, int ldc) {
  // a_tile[kk][r] = op(A)(row0 + r, k0 + kk); b_tile[kk][col] = op(B)(k0 + kk, col0 + col)
  __shared__ float a_tile[kSlice][kTile];
  __shared__ float b_tile[kSlice][kTile];
  constexpr int kThreads = kThreadsSide * kThreadsSide;
  constexpr int kLoads = kSlice * kTile / kThreads;  // entries of each tile one thread loads
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kThreadsSide + tx;
  const int row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile;
  float acc[kMicro][kMicro];
#pragma unroll
  for (int i = 0; i < kMicro; ++i)
#pragma unroll
    for (int j = 0; j < kMicro; ++j) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < k; k0 += kSlice) {
#pragma unroll
    for (int l = 0; l < kLoads; ++l) {
      // Consecutive threads take consecutive addresses of A and B as stored, whichever the
      // transpose, so the global reads are coalesced.
      const int e = tid + l * kThreads;
      const int a_r = kTransA ? e % kTile : e / kSlice;
      const int a_kk = kTransA ? e / kTile : e % kSlice;
      const int gr = row0 + a_r, gk = k0 + a_kk;
      float av = 0.0f;
      if (gr < m && gk < k) av = kTransA ? a[int64_t(gk) * lda + gr] : a[int64_t(gr) * lda + gk];
      a_tile[a_kk][a_r] = av;
      const int b_col = kTransB ? e / kSlice : e % kTile;
      const int b_kk = kTransB ? e % kSlice : e / kTile;
      const int gc = col0 + b_col, gkb = k0 + b_kk;
      float bv = 0.0f;
      if (gc < n && gkb < k) bv = kTransB ? b[int64_t(gc) * ldb + gkb] : b[int64_t(gkb) * ldb + gc];
      b_tile[b_kk][b_col] = bv;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSlice; ++kk) {
      float a_frag[kMicro], b_frag[kMicro];
#pragma unroll
      for (int i = 0; i < kMicro; ++i) a_frag[i] = a_tile[kk][ty + i * kThreadsSide];
#pragma unroll
      for (int j = 0; j < kMicro; ++j) b_frag[j] = b_tile[kk][tx + j * kThreadsSide];
#pragma unroll
      for (int i = 0; i < kMicro; ++i)
#pragma unroll
        for (int j = 0; j < kMicro; ++j) acc[i][j] += a_frag[i] * b_frag[j];
    }
    __syncthreads();  // the tiles are overwritten by the next slice
  }

#pragma unroll
  for (int i = 0; i < kMicro; ++i) {
    const int r = row0 + ty + i * kThreadsSide;
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      const int col = col0 + tx + j * kThreadsSide;
      if (r < m && col < n) {
        float* out = c + int64_t(r) * ldc + col;
        *out = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *out;
      }
    }
  }
}

// ---- launchers

void sgemm_tiled(const LaunchContext& ctx, bool trans_a, bool trans_b, int m, int n, int k,
                 float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                 float* c, int ldc) {
  const dim3 grid(unsigned(ceil_div(n, kTile)), unsigned(ceil_div(m, kTile)));
  const dim3 block(kThreadsSide, kThreadsSide);
  void (*kernel)(int, int, int, float, const float*, int, const float*, int, float, float*, int) =
      trans_a ? (trans_b ? sgemm_tiled_kernel<true, true> : sgemm_tiled_kernel<true, false>)
              : (trans_b ? sgemm_tiled_kernel<false, true> : sgemm_tiled_kernel<false, false>);
  launch(kernel, grid, block, 0, ctx, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---- CudaBackend members

void CudaBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  checks::gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
#if !defined(ICH_CUDA_EMU)
  if (options_.gemm == GemmImpl::cublas) {
    // Column-major view: C^T (n, m) = op(B)^T (n, k) op(A)^T (k, m).
    CUBLAS_CHECK(cublasSgemm(cublas_, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a, lda,
                             &beta, c, ldc));
    if (launch_.sync_after_launch) CUDA_CHECK(cudaStreamSynchronize(launch_.stream));
    return;
  }
#endif
  sgemm_tiled(launch_, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ich::ICH_CUDA_NS
