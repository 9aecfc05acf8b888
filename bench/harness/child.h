// The child's side of a measurement (bench/harness/measurement.h): `ichseg bench __child
// KEY=VALUE...` measures one BenchConfig in this process and prints the result lines.
#pragma once

#include <string>
#include <vector>

#include "bench/harness/measurement.h"

namespace ich::bench {

// Parses the words (BenchConfig::from_args) and runs the task; returns the exit code.
int child_main(const std::vector<std::string>& words);

// task train: warm-up and timed U-Net training steps (child_train.cpp).
int measure_training(const BenchConfig& config);
// task peers: our convolution and SGEMM against cuDNN and cuBLAS on a GPU (child_peers.cpp).
int measure_peers(const BenchConfig& config);

}  // namespace ich::bench
