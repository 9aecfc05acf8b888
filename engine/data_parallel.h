// Synchronous data-parallel training, as PyTorch's DistributedDataParallel: every rank holds
// the whole model, broadcast_parameters() gives all ranks rank 0's weights and buffers at the
// start, each rank runs forward/backward on its own shard of the batch (data/sampler.h cuts
// the shards), and GradientBucketer averages the gradients over the ranks (sum / size) before
// every Adam step, so every rank applies the identical update and the weights stay identical.
// BatchNorm statistics stay per rank, unless the model's BatchNorm layers are given the
// process group (set_sync_batch_norm, engine/nn.h): synchronised BatchNorm.
//
// The asynchronous alternative is engine/parameter_server.h; both run over a ProcessGroup
// (engine/process_group.h). docs/DISTRIBUTED.md has the launch lines and the semantics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/nn.h"
#include "engine/process_group.h"
#include "engine/tensor.h"

namespace ich {

// Copies rank 0's parameters and buffers (BatchNorm running statistics included) to every
// rank, in one broadcast. Call once after building the model (and after loading a
// checkpoint on rank 0) so all ranks start from the same weights.
void broadcast_parameters(Module& model, ProcessGroup& group);

// Averages the gradients of `params` over the ranks: packs them into contiguous host
// buckets of about bucket_bytes (a parameter larger than that gets a bucket of its own;
// parameters are never split), one all-reduce (sum) per bucket, scales by 1/size and
// writes the result back as each parameter's grad. A parameter that has no grad on this
// rank contributes zeros, and gets the averaged grad like the others (so every rank's
// Adam updates the same set). With one rank it does nothing.
class GradientBucketer {
 public:
  static constexpr size_t kDefaultBucketBytes = size_t(25) << 20;  // PyTorch DDP's 25 MB

  struct Entry {
    size_t param = 0;    // index into the parameter list
    int64_t offset = 0;  // in floats, inside the bucket
    int64_t numel = 0;
  };
  struct Bucket {
    std::vector<Entry> entries;
    int64_t numel = 0;
  };

  explicit GradientBucketer(std::vector<Tensor> params, size_t bucket_bytes = kDefaultBucketBytes);

  void allreduce_average(ProcessGroup& group);

  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<float> host_;  // the largest bucket
};

}  // namespace ich
