// One measurement of `ichseg bench` in a process of its own.
//
// The parent (the modes, bench/harness/mode_*.cpp) starts `ichseg bench __child KEY=VALUE...`
// (the same binary, through /proc/self/exe) once per configuration, so that each
// configuration's peak resident memory is its own (wait4's rusage of that child) and a
// configuration that runs out of memory or hangs ends only its own process. The child
// (bench/harness/child.h) prints one line
//   ich-bench-result step_s=0.11;0.12 allocs_per_step=3 hits_per_step=40 peak_bytes=1234
// (plus `ich-bench-peer` lines for the peers task) and exits 0, or one error line on
// stderr and exits non-zero.
#pragma once

#include <string>
#include <vector>

namespace ich::bench {

struct BenchConfig {
  // train: U-Net training steps (forward + Dice/BCE loss + backward + Adam) on the blob task.
  // peers: our im2col convolution and SGEMM against cuDNN and cuBLAS (cuda only).
  std::string task = "train";
  std::string device = "cpu";
  int width = 16, depth = 3, size = 64, batch = 8;
  int warmup = 1, steps = 3;  // untimed steps, then timed steps
  bool data_in_step = false;  // draw each step's batch inside the timed region (an epoch)
  int threads = 0;            // >0: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, ICH_EMU_WORKERS
  int caching = -1;           // 0/1: ICH_CUDA_CACHING_ALLOCATOR; -1: leave the environment

  std::vector<std::string> to_args() const;                             // KEY=VALUE words
  static BenchConfig from_args(const std::vector<std::string>& words);  // throws ich::Error
  // The child's environment settings (KEY=VALUE) that threads and caching ask for.
  std::vector<std::string> environment() const;
};

struct PeerTiming {
  std::string op, variant;
  double ms = 0;
};

struct BenchResult {
  bool ok = false;
  std::string error;              // why not ok: the child's error line, a signal, a timeout
  std::vector<double> step_s;     // each timed step, seconds
  double allocs_per_step = 0;     // device (or malloc) allocations per timed step
  double hits_per_step = 0;       // caching-allocator hits per timed step
  double peak_bytes = 0;          // the backend's peak bytes in use (tensors + workspaces)
  double max_rss_bytes = 0;       // the child's peak resident set (wait4)
  std::vector<PeerTiming> peers;  // task peers

  double median_step_s() const;  // NaN when no step was timed
  double total_step_s() const;
};

// Runs config in a child process; gives up after timeout_s seconds (SIGKILL).
BenchResult run_measurement(const BenchConfig& config, double timeout_s);

// Bytes a train step of config is expected to hold at its peak (activations kept for
// backward, their gradients, parameters with gradients and Adam moments, the largest
// convolution workspace); see the comment at its definition for where the factor comes from.
double estimate_train_bytes(int width, int depth, int size, int batch);

bool gpu_present();

}  // namespace ich::bench
