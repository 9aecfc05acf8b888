// Data-parallel training over MPI: the communicator, gradient all-reduce in buckets, the
// start-of-run weight broadcast, the distributed sampler's shard rule, and the asynchronous
// parameter server. docs/DISTRIBUTED.md has the launch lines and the semantics.
//
// Synchronous (as PyTorch's DistributedDataParallel): every rank holds the whole model,
// broadcast_parameters() gives all ranks rank 0's weights and buffers at the start, each
// rank runs forward/backward on its own shard of the batch, GradientBucketer averages the
// gradients over the ranks (sum / size) before every Adam step, so every rank applies the
// identical update and the weights stay identical. BatchNorm statistics stay per rank,
// unless the model's BatchNorm layers are given the Communicator as their ProcessGroup
// (set_sync_batch_norm, engine/nn.h): synchronised BatchNorm.
//
// Asynchronous: rank 0 is a parameter server that owns the weights and Adam; ranks 1..N-1
// are workers that push gradients and pull fresh weights without waiting for each other.
//
// Failure: MPI errors are returned, not fatal, and every wait has a deadline (timeout_s).
// When a rank dies or hangs, the others throw ich::Error "rank R: no answer from the other
// ranks within T s ..." instead of hanging, and the Communicator's destructor then calls
// MPI_Abort so mpirun ends the whole job with a non-zero status.
//
// Without MPI (ICH_MPI=OFF) or when the process was not started by mpirun, a Communicator
// is a single-process world (rank 0 of 1) and every collective is a no-op.
//
// Host buffers only: device tensors are copied to the host for MPI (NCCL between GPUs is
// a later step).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/process_group.h"
#include "engine/tensor.h"

namespace ich {

// True when this build has MPI (ICH_MPI=ON).
bool mpi_compiled_in();
// True when the environment says this process was started by an MPI launcher (mpirun /
// mpiexec of Open MPI, MPICH or a PMIx launcher).
bool launched_by_mpirun();
// The number of processes the launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE), read from
// the environment without initialising MPI; 1 when not started by a launcher.
int launcher_world_size();

// The MPI world, RAII: the constructor initialises MPI when launched by mpirun, the
// destructor finalises it (or aborts the job, see above). One Communicator per process.
// It is the ProcessGroup (engine/process_group.h) of synchronised BatchNorm.
class Communicator : public ProcessGroup {
 public:
  static constexpr double kDefaultTimeoutSeconds = 120.0;

  explicit Communicator(double timeout_s = kDefaultTimeoutSeconds);
  ~Communicator() override;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool is_root() const { return rank_ == 0; }
  double timeout_s() const { return timeout_s_; }
  void set_timeout_s(double seconds);

  // Collectives; each waits at most timeout_s and throws ich::Error after that.
  void barrier();
  // In place: data[i] = sum over ranks of data[i].
  void allreduce_sum(float* data, int64_t count);
  void allreduce_sum(double* data, int64_t count);
  // all (size() * count) = every rank's `count` doubles, rank 0's first.
  void allgather(const double* mine, int64_t count, double* all) override;
  // root's `bytes` bytes at data are copied to every rank's data.
  void broadcast(void* data, size_t bytes, int root = 0);
  // root's string (any length, any bytes) replaces every rank's *text.
  void broadcast_string(std::string* text, int root = 0);

  // Point to point, each waits at most timeout_s. recv accepts a message of at most
  // `capacity` bytes from `source` (kAnySource: any rank) and returns its sender and size.
  static constexpr int kAnySource = -1;
  void send(const void* data, size_t bytes, int dest, int tag);
  struct Received {
    int source = 0;
    size_t bytes = 0;
  };
  Received recv(void* data, size_t capacity, int source, int tag);

  // Prints "rank R: <message>" on stderr and ends the whole MPI job with `code` (does not
  // return). In a single-process world it exits the process with `code`.
  [[noreturn]] void abort(const std::string& message, int code = 1);

 private:
  struct Impl;
  [[noreturn]] void fail(const std::string& what);
  void check_mpi(int code, const char* call);
  void wait(void* request, void* status, const char* what);

  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_ = kDefaultTimeoutSeconds;
  bool failed_ = false;
};

// Copies rank 0's parameters and buffers (BatchNorm running statistics included) to every
// rank, in one broadcast. Call once after building the model (and after loading a
// checkpoint on rank 0) so all ranks start from the same weights.
void broadcast_parameters(Module& model, Communicator& comm);

// Averages the gradients of `params` over the ranks: packs them into contiguous host
// buckets of about bucket_bytes (a parameter larger than that gets a bucket of its own;
// parameters are never split), one MPI all-reduce (sum) per bucket, scales by 1/size and
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

  void allreduce_average(Communicator& comm);

  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<float> host_;  // the largest bucket
};

// Which dataset indices each rank takes in an epoch, as PyTorch's DistributedSampler: a
// permutation of 0..n-1 drawn from (seed, epoch), identical on every rank (no
// communication needed), cut into `world` shards by stride: rank r takes positions r,
// r + world, r + 2 world, ...
//
// Every rank must take the same number of steps, so the shards have equal length; the
// tail rule says how when n is not a multiple of world:
//   drop (default): the last n mod world positions of the permutation are left out of this
//        epoch, so no sample is seen twice in an epoch; the permutation changes every
//        epoch, so a different few are left out each time.
//   pad: the permutation is extended by its first positions (PyTorch's default), so every
//        sample is seen and up to world-1 samples are seen twice.
class DistributedSampler {
 public:
  enum class Tail { drop, pad };

  DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed, bool shuffle = true,
                     Tail tail = Tail::drop);

  int64_t samples_per_rank() const { return per_rank_; }
  // This rank's indices of `epoch`, in the order to visit them.
  std::vector<int64_t> indices(int64_t epoch) const;
  // The whole epoch's order (the same on every rank): a Fisher-Yates shuffle driven by
  // Philox numbers of (seed, epoch), or 0..n-1 without shuffle.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  int64_t n_;
  int rank_, world_;
  uint64_t seed_;
  bool shuffle_;
  Tail tail_;
  int64_t per_rank_;
};

// ---- asynchronous parameter server (rank 0) and its workers (ranks 1..N-1)
//
// Protocol: a worker computes gradients on weights of version v and pushes them (with v
// and its BatchNorm buffers) to rank 0; the server computes the staleness s = V - v, where
// V is its current version (the number of updates applied so far). With a staleness bound
// S >= 0 and s > S the gradient is rejected; otherwise Adam applies it at once and V
// grows by one, and the worker's buffers become the server's. Either way the server
// answers with its current weights and version, and the worker continues from them (after
// a rejection it recomputes the same batch on the fresh weights). Workers never wait for
// each other, only for the server's answer to their own push.

// A few numbers a worker sends along with its gradients for the server's bookkeeping (the
// trainer: the step's loss sum, images and confusion counts); the server hands those of an
// applied push to on_update. Doubles, so counts stay exact far beyond float's 2^24.
constexpr size_t kPushStatsWords = 6;
using PushStats = std::array<double, kPushStatsWords>;

struct AsyncStats {
  int64_t updates = 0;   // gradients applied
  int64_t rejected = 0;  // gradients older than the staleness bound
  int64_t max_staleness = 0;
  double mean_staleness = 0.0;  // over applied gradients
};

class ParameterServer {
 public:
  // staleness_bound < 0: no bound.
  ParameterServer(Module& model, Adam& adam, Communicator& comm, int64_t staleness_bound = -1);

  // Serves pushes until every worker has called AsyncWorker::finish(). on_update(version,
  // stats) runs after each applied update (logging, checkpoints, the next lr), with the
  // PushStats the worker sent with that gradient.
  AsyncStats serve(
      const std::function<void(int64_t version, const PushStats& stats)>& on_update = {});
  int64_t version() const { return version_; }

 private:
  Module& model_;
  Adam& adam_;
  Communicator& comm_;
  int64_t staleness_bound_;
  int64_t version_ = 0;
};

class AsyncWorker {
 public:
  AsyncWorker(Module& model, Communicator& comm);

  // Sends this rank's parameter grads and buffers, then waits for the server's weights
  // and loads them. Returns true when the server applied the gradient, false when it
  // rejected it as too stale (the weights are fresh now: recompute the same batch).
  bool push_and_pull(const PushStats& stats = {});
  // Tells the server this worker has no more gradients.
  void finish();
  int64_t version() const { return version_; }

 private:
  Module& model_;
  Communicator& comm_;
  int64_t version_ = 0;
};

}  // namespace ich
