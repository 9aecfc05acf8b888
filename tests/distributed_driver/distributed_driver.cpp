// ich_distributed_driver: trains a small U-Net on the synthetic blob task (data/blobs.h) with
// the data-parallel pieces of engine/ (data_parallel.h, parameter_server.h over the
// process_group.h of MPI) and data/sampler.h's shards, for the distributed tests and the
// distributed benchmark (bench/bench_distributed.sh). Not a user command: `ichseg train
// --distributed` is.
//
//   mpirun -np 2 ich_distributed_driver --mode sync  --steps K --batch b --out PREFIX
//   mpirun -np 2 ich_distributed_driver --mode async --steps K --batch b --out PREFIX
//                ich_distributed_driver --mode accumulate --micro 2 --steps K --batch b --out
//                PREFIX
//
// sync: every rank takes its DistributedSampler shard, gradients are averaged by
//   GradientBucketer before each Adam step. Each rank starts from a different random
//   initialisation (seed + rank) on purpose: broadcast_parameters must make them equal.
// async: rank 0 is the ParameterServer, ranks 1..N-1 are AsyncWorkers over N-1 shards.
// accumulate: one process that does what `sync` over --micro ranks does, by gradient
//   accumulation: the micro-batches are the shards the ranks would take; the summed
//   gradients are scaled by 1/micro before the Adam step.
//
// Writes (rank 0 unless said): PREFIX.safetensors (final state_dict; sync and accumulate
// add the last step's gradients as "grad.<name>"),
// PREFIX.ckpt.safetensors every --checkpoint-every steps with metadata "step" (sync),
// PREFIX.rankR.losses (every rank that trains: one training loss per step), PREFIX.curve.csv
// (--eval-every: epoch,train_loss,val_loss,val_dice,seconds), and one summary line on stdout:
//   result mode=sync ranks=2 steps=K images=... seconds=... images_per_s=...
// Failure hooks: --die-at-step k makes rank 1 _exit(1) before step k; --hang-at-step k makes
// rank 1 sleep forever there.
//
// batchnorm: one BatchNorm2d layer, no model: the global batch of --batch x --micro samples
// (C = 3 channels of 5x4, per-channel means far from 0) is cut into contiguous equal parts,
// one per rank (mpirun -np N, N = --micro; or one process holding all of them). For each
// device (cpu, and cuda-emu when built) and each of synchronised BatchNorm on and off, it
// runs --steps training forwards with loss sum(y * r) (r fixed random, so the loss and the
// gradients decompose over samples) and backward, and writes PREFIX.rankR.safetensors:
// "<device>.<sync|local>.y" and ".dx" of the first step (this rank's samples), ".dgamma" and
// ".dbeta" of the first step summed over the ranks (what the data-parallel average does up
// to 1/N), ".running_mean" and ".running_var" after the last step.
// With --time-reps R it then times a layer of --width channels on --batch images of --size
// x --size per rank, with and without synchronisation (time_batchnorm below; quoted in
// docs/DISTRIBUTED.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "data/blobs.h"
#include "data/sampler.h"
#include "engine/data_parallel.h"
#include "engine/metrics.h"
#include "engine/optim.h"
#include "engine/parameter_server.h"
#include "engine/process_group.h"
#include "engine/safetensors.h"
#include "models/unet.h"

using namespace ich;
using ich::data::DistributedSampler;

namespace {

struct Options {
  std::string mode = "sync";
  std::string out;
  int steps = 4;
  int batch = 2;
  int micro = 2;  // accumulate: micro-batches per step (the ranks it stands for)
  int width = 4;
  int depth = 2;
  int size = 16;
  int dataset = 64;
  uint64_t seed = 7;
  uint64_t data_seed = 1000;
  float lr = 0.01f;
  double timeout_s = ProcessGroup::kDefaultTimeoutSeconds;
  size_t bucket_bytes = GradientBucketer::kDefaultBucketBytes;
  int64_t staleness = -1;
  int die_at_step = -1;
  int hang_at_step = -1;
  int checkpoint_every = 0;  // sync: steps between PREFIX.ckpt.safetensors; 0: none
  int eval_every = 0;        // steps between validation rows of PREFIX.curve.csv; 0: none
  int val_images = 32;
  int time_reps = 0;  // batchnorm: timed forward+backward repetitions per variant; 0: none
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ICH_CHECK(i + 1 < argc, "option " << flag << " needs a value");
    const std::string value = argv[++i];
    if (flag == "--mode")
      o.mode = value;
    else if (flag == "--out")
      o.out = value;
    else if (flag == "--steps")
      o.steps = std::stoi(value);
    else if (flag == "--batch")
      o.batch = std::stoi(value);
    else if (flag == "--micro")
      o.micro = std::stoi(value);
    else if (flag == "--width")
      o.width = std::stoi(value);
    else if (flag == "--depth")
      o.depth = std::stoi(value);
    else if (flag == "--size")
      o.size = std::stoi(value);
    else if (flag == "--dataset")
      o.dataset = std::stoi(value);
    else if (flag == "--seed")
      o.seed = std::stoull(value);
    else if (flag == "--lr")
      o.lr = std::stof(value);
    else if (flag == "--timeout")
      o.timeout_s = std::stod(value);
    else if (flag == "--bucket-bytes")
      o.bucket_bytes = std::stoull(value);
    else if (flag == "--staleness")
      o.staleness = std::stoll(value);
    else if (flag == "--die-at-step")
      o.die_at_step = std::stoi(value);
    else if (flag == "--hang-at-step")
      o.hang_at_step = std::stoi(value);
    else if (flag == "--eval-every")
      o.eval_every = std::stoi(value);
    else if (flag == "--checkpoint-every")
      o.checkpoint_every = std::stoi(value);
    else if (flag == "--time-reps")
      o.time_reps = std::stoi(value);
    else if (flag == "--val-images")
      o.val_images = std::stoi(value);
    else
      ICH_FAIL("unknown option " << flag);
  }
  ICH_CHECK(!o.out.empty(), "--out PREFIX is required");
  ICH_CHECK(
      o.mode == "sync" || o.mode == "async" || o.mode == "accumulate" || o.mode == "batchnorm",
      "--mode is sync, async, accumulate or batchnorm, got " << o.mode);
  return o;
}

UnetConfig model_config(const Options& o) {
  UnetConfig cfg;
  cfg.width = o.width;
  cfg.depth = o.depth;
  cfg.drop_rate = 0.0f;  // the equivalence argument needs no random masks
  return cfg;
}

// The images and masks of dataset samples `indices`, (n, 1, size, size) each.
std::pair<Tensor, Tensor> load_batch(const Options& o, const std::vector<int64_t>& indices) {
  const int n = int(indices.size());
  const size_t plane = size_t(o.size) * size_t(o.size);
  std::vector<float> images(plane * n), masks(plane * n);
  for (int i = 0; i < n; ++i) {
    const BlobBatch one = make_blob_batch(1, o.size, o.data_seed, uint64_t(indices[size_t(i)]));
    std::copy(one.images.begin(), one.images.end(), images.begin() + i * plane);
    std::copy(one.masks.begin(), one.masks.end(), masks.begin() + i * plane);
  }
  const Shape shape{n, 1, o.size, o.size};
  return {Tensor::from_host(images, shape), Tensor::from_host(masks, shape)};
}

// Step `step`'s batch of shard `shard` of `shards`: steps walk through the epochs in
// order, each epoch a fresh permutation; the partial batch at an epoch's end is dropped.
std::vector<int64_t> step_indices(const Options& o, int shard, int shards, int step) {
  const DistributedSampler sampler(o.dataset, shard, shards, o.data_seed);
  const int64_t steps_per_epoch = sampler.samples_per_rank() / o.batch;
  ICH_CHECK(steps_per_epoch >= 1, "a shard of " << sampler.samples_per_rank()
                                                << " samples holds no batch of " << o.batch);
  const std::vector<int64_t> shard_indices = sampler.indices(step / steps_per_epoch);
  const int64_t first = (step % steps_per_epoch) * o.batch;
  return std::vector<int64_t>(shard_indices.begin() + first,
                              shard_indices.begin() + first + o.batch);
}

// Forward and backward of one batch; returns the loss.
float forward_backward(Unet& net, const Options& o, const std::vector<int64_t>& indices) {
  const auto [x, y] = load_batch(o, indices);
  const Tensor loss = dice_bce_loss(net.forward(x), y);
  check_finite(loss, "training loss");
  loss.backward();
  return loss.item();
}

struct Validation {
  float loss = 0;
  double dice = 0;
};

// Eval-mode loss and Dice on fixed images the training never sees (another data seed).
Validation validate(Unet& net, const Options& o) {
  const bool was_training = net.is_training();
  net.eval();
  NoGradGuard no_grad;
  const BlobBatch v = make_blob_batch(o.val_images, o.size, o.data_seed + 1, 0);
  const Shape shape{o.val_images, 1, o.size, o.size};
  const Tensor p = net.forward(Tensor::from_host(v.images, shape));
  Validation r;
  r.loss = dice_bce_loss(p, Tensor::from_host(v.masks, shape)).item();
  const std::vector<float> probs = p.to_host();
  r.dice = segmentation_metrics(probs.data(), v.masks.data(), probs.size()).dice;
  net.train(was_training);
  return r;
}

class Recorder {
 public:
  Recorder(const Options& o, int rank, bool writes_curve) : o_(o) {
    losses_.open(o.out + ".rank" + std::to_string(rank) + ".losses");
    if (writes_curve && o.eval_every > 0) {
      curve_.open(o.out + ".curve.csv");
      curve_ << "epoch,train_loss,val_loss,val_dice,seconds\n";
    }
    start_ = std::chrono::steady_clock::now();
  }
  void loss(float value) {
    losses_ << value << "\n";
    losses_.flush();
    window_sum_ += value;
    ++window_count_;
  }
  // A validation row every eval_every steps (or updates, on the parameter server).
  void maybe_validate(Unet& net, int64_t step) {
    if (!curve_.is_open() || step % o_.eval_every != 0) return;
    const Validation v = validate(net, o_);
    // The parameter server trains on nothing itself: its train_loss field stays empty.
    curve_ << step / o_.eval_every << ",";
    if (window_count_) curve_ << window_sum_ / window_count_;
    curve_ << "," << v.loss << "," << v.dice << "," << seconds() << "\n";
    curve_.flush();
    window_sum_ = 0;
    window_count_ = 0;
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  const Options& o_;
  std::ofstream losses_, curve_;
  double window_sum_ = 0;
  int window_count_ = 0;
  std::chrono::steady_clock::time_point start_;
};

void failure_hooks(const Options& o, int rank, int step) {
  if (rank != 1) return;
  if (step == o.die_at_step) {
    std::fprintf(stderr, "rank 1: dying at step %d (--die-at-step)\n", step);
    std::fflush(stderr);
    _exit(1);
  }
  if (step == o.hang_at_step) {
    std::fprintf(stderr, "rank 1: hanging at step %d (--hang-at-step)\n", step);
    std::fflush(stderr);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// The state_dict and, under "grad.<name>", the gradients of the last step as Adam saw them
// (Adam's update hardly depends on the gradients' scale, so the test compares them too).
NamedTensors state_and_grads(const Unet& net) {
  NamedTensors out = net.state_dict();
  for (const auto& [name, p] : net.named_parameters()) {
    if (p.grad().defined()) out.emplace_back("grad." + name, p.grad());
  }
  return out;
}

void summary(const Options& o, int ranks, int64_t images, double seconds) {
  std::printf("result mode=%s ranks=%d steps=%d images=%lld seconds=%.3f images_per_s=%.2f\n",
              o.mode.c_str(), ranks, o.steps, static_cast<long long>(images), seconds,
              double(images) / seconds);
  std::fflush(stdout);
}

void run_sync(const Options& o, ProcessGroup& comm) {
  // A different initialisation per rank: broadcast_parameters has to make them agree.
  Unet net(model_config(o), o.seed + uint64_t(comm.rank()));
  broadcast_parameters(net, comm);
  AdamOptions adam_options;
  adam_options.lr = o.lr;
  Adam adam(net.named_parameters(), adam_options);
  GradientBucketer bucketer(net.parameters(), o.bucket_bytes);
  Recorder record(o, comm.rank(), comm.is_root());
  comm.barrier();
  const double start = record.seconds();
  for (int step = 0; step < o.steps; ++step) {
    failure_hooks(o, comm.rank(), step);
    adam.zero_grad();
    record.loss(forward_backward(net, o, step_indices(o, comm.rank(), comm.size(), step)));
    bucketer.allreduce_average(comm);
    adam.step();
    if (comm.is_root() && o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) {
      save_safetensors(o.out + ".ckpt.safetensors", net.state_dict(),
                       {{"step", std::to_string(step + 1)}});
    }
    if (comm.is_root()) record.maybe_validate(net, step + 1);
  }
  comm.barrier();
  const double seconds = record.seconds() - start;
  if (comm.is_root()) {
    save_safetensors(o.out + ".safetensors", state_and_grads(net));
    summary(o, comm.size(), int64_t(o.steps) * o.batch * comm.size(), seconds);
  }
}

void run_accumulate(const Options& o) {
  Unet net(model_config(o), o.seed);
  AdamOptions adam_options;
  adam_options.lr = o.lr;
  Adam adam(net.named_parameters(), adam_options);
  Recorder record(o, 0, true);
  for (int step = 0; step < o.steps; ++step) {
    adam.zero_grad();
    float loss_sum = 0;
    for (int m = 0; m < o.micro; ++m) {
      loss_sum += forward_backward(net, o, step_indices(o, m, o.micro, step));
    }
    {
      NoGradGuard no_grad;
      for (Tensor p : net.parameters()) p.set_grad(scale(p.grad(), 1.0f / float(o.micro)));
    }
    record.loss(loss_sum / float(o.micro));
    adam.step();
    record.maybe_validate(net, step + 1);
  }
  save_safetensors(o.out + ".safetensors", state_and_grads(net));
  summary(o, 1, int64_t(o.steps) * o.batch * o.micro, record.seconds());
}

void run_async(const Options& o, ProcessGroup& comm) {
  Unet net(model_config(o), o.seed);
  broadcast_parameters(net, comm);
  comm.barrier();
  if (comm.is_root()) {
    AdamOptions adam_options;
    adam_options.lr = o.lr;
    Adam adam(net.named_parameters(), adam_options);
    ParameterServer server(net, adam, comm, o.staleness);
    Recorder record(o, 0, true);
    const AsyncStats stats = server.serve(
        [&](int64_t version, const PushStats&) { record.maybe_validate(net, version); });
    const double seconds = record.seconds();
    save_safetensors(o.out + ".safetensors", net.state_dict());
    std::printf("async updates=%lld rejected=%lld max_staleness=%lld mean_staleness=%.3f\n",
                static_cast<long long>(stats.updates), static_cast<long long>(stats.rejected),
                static_cast<long long>(stats.max_staleness), stats.mean_staleness);
    summary(o, comm.size(), stats.updates * o.batch, seconds);
  } else {
    AsyncWorker worker(net, comm);
    Recorder record(o, comm.rank(), false);
    for (int step = 0; step < o.steps;) {
      failure_hooks(o, comm.rank(), step);
      net.zero_grad();
      const float loss =
          forward_backward(net, o, step_indices(o, comm.rank() - 1, comm.size() - 1, step));
      if (worker.push_and_pull()) {  // else: too stale, the same batch again on fresh weights
        record.loss(loss);
        ++step;
      }
    }
    worker.finish();
  }
}

// One step's input and loss weights: the whole global batch (n, c, h, w), the same on every
// rank; each rank then takes its part. Channel ch has mean 3 + 2 ch and spread 0.5 + ch.
std::pair<std::vector<float>, std::vector<float>> batchnorm_data(int n, int c, int hw, int step) {
  Generator gen(1234 + uint64_t(step));
  std::vector<float> x = Tensor::normal({n, c, hw}, 0.0f, 1.0f, gen).to_host();
  const std::vector<float> r = Tensor::uniform({n, c, hw}, -1.0f, 1.0f, gen).to_host();
  for (int img = 0; img < n; ++img)
    for (int ch = 0; ch < c; ++ch)
      for (int i = 0; i < hw; ++i) {
        float& v = x[(size_t(img) * c + ch) * hw + i];
        v = 3.0f + 2.0f * ch + (0.5f + ch) * v;
      }
  return {x, r};
}

// --time-reps R: a layer of --width channels on (--batch, --size, --size) per rank on the
// cpu, forward + backward with loss sum(y * r), R times with synchronised BatchNorm and R
// times without, alternating; rank 0 prints the medians in ms:
//   batchnorm_time ranks=2 batch=8 channels=64 size=64 sync_ms=... local_ms=...
void time_batchnorm(const Options& o, ProcessGroup& comm) {
  const int n = o.batch, c = o.width, h = o.size, w = o.size;
  Generator gen(7 + uint64_t(comm.rank()));
  const Tensor x0 = Tensor::normal({n, c, h, w}, 1.0f, 2.0f, gen);
  const Tensor r = Tensor::uniform({n, c, h, w}, -1.0f, 1.0f, gen);
  BatchNorm2d sync_bn(c), local_bn(c);
  set_sync_batch_norm(sync_bn, &comm);
  std::vector<double> ms[2];
  for (int rep = 0; rep < o.time_reps; ++rep) {
    for (int sync = 0; sync < 2; ++sync) {
      BatchNorm2d& bn = sync ? sync_bn : local_bn;
      comm.barrier();
      const auto start = std::chrono::steady_clock::now();
      Tensor x = x0.detach();
      x.set_requires_grad(true);
      bn.zero_grad();
      sum(mul(bn.forward(x), r)).backward();
      ms[sync].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
  }
  for (auto& v : ms) std::sort(v.begin(), v.end());
  if (comm.is_root()) {
    std::printf("batchnorm_time ranks=%d batch=%d channels=%d size=%d sync_ms=%.3f local_ms=%.3f\n",
                comm.size(), n, c, o.size, ms[1][ms[1].size() / 2], ms[0][ms[0].size() / 2]);
    std::fflush(stdout);
  }
}

void run_batchnorm(const Options& o, ProcessGroup& comm) {
  const int ranks = comm.size(), rank = comm.rank();
  const int global = o.batch * o.micro;
  ICH_CHECK(global % ranks == 0, "--batch x --micro = " << global << " samples cannot be cut into "
                                                        << ranks << " equal parts");
  const int n = global / ranks, c = 3, h = 5, w = 4, hw = h * w;
  std::vector<Device> devices{Device::cpu()};
  if (backend_available(Device::cuda_emu())) devices.push_back(Device::cuda_emu());
  NamedTensors out;
  for (const Device& device : devices) {
    for (const bool sync : {true, false}) {
      const std::string key = device.str() + (sync ? ".sync." : ".local.");
      BatchNorm2d bn(c, 0.1f);
      Generator init(99);
      bn.weight.copy_(Tensor::uniform({c}, 0.5f, 1.5f, init));
      bn.bias.copy_(Tensor::uniform({c}, -0.5f, 0.5f, init));
      bn.to(device);
      if (sync) set_sync_batch_norm(bn, &comm);
      bn.train();
      for (int step = 0; step < o.steps; ++step) {
        const auto [x_all, r_all] = batchnorm_data(global, c, hw, step);
        const size_t part = size_t(n) * c * hw, first = size_t(rank) * part;
        const std::vector<float> x_mine(x_all.begin() + first, x_all.begin() + first + part);
        const std::vector<float> r_mine(r_all.begin() + first, r_all.begin() + first + part);
        Tensor x = Tensor::from_host(x_mine, {n, c, h, w}, device).set_requires_grad(true);
        const Tensor r = Tensor::from_host(r_mine, {n, c, h, w}, device);
        bn.zero_grad();
        const Tensor y = bn.forward(x);
        sum(mul(y, r)).backward();
        if (step > 0) continue;
        out.emplace_back(key + "y", y.detach().to(Device::cpu()));
        out.emplace_back(key + "dx", x.grad().to(Device::cpu()));
        for (const auto& [name, p] : {std::pair<const char*, Tensor>{"dgamma", bn.weight},
                                      std::pair<const char*, Tensor>{"dbeta", bn.bias}}) {
          std::vector<float> g = p.grad().to_host();
          comm.allreduce_sum(g.data(), int64_t(g.size()));
          out.emplace_back(key + name, Tensor::from_host(g, {c}));
        }
      }
      out.emplace_back(key + "running_mean", bn.running_mean.to(Device::cpu()));
      out.emplace_back(key + "running_var", bn.running_var.to(Device::cpu()));
    }
  }
  save_safetensors(o.out + ".rank" + std::to_string(rank) + ".safetensors", out);
  if (o.time_reps > 0) time_batchnorm(o, comm);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ich_distributed_driver: %s\n", e.what());
    return 2;
  }
  if (o.mode == "accumulate") {
    try {
      run_accumulate(o);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ich_distributed_driver: %s\n", e.what());
      return 1;
    }
  }
  const std::unique_ptr<ProcessGroup> group = open_process_group(o.timeout_s);
  ProcessGroup& comm = *group;
  try {
    if (o.mode == "batchnorm")
      run_batchnorm(o, comm);
    else if (o.mode == "sync")
      run_sync(o, comm);
    else
      run_async(o, comm);
  } catch (const std::exception& e) {
    // Ends every rank of the job, not only this one.
    comm.abort(e.what());
  }
  return 0;
}
