// Data-parallel training (engine/data_parallel.h, engine/parameter_server.h over
// engine/process_group.h): the gradient buckets and the world of one in one process, then real
// MPI jobs: `mpirun -np 2 ich_distributed_driver` (tests/distributed_driver) for sync ==
// gradient accumulation, async training, synchronised BatchNorm, and a rank that dies or
// hangs. (The sampler's shard rule is a data rule: tests/data/test_sampler.cpp.)
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "distributed/mpi_job.h"
#include "engine/data_parallel.h"
#include "engine/process_group.h"
#include "engine/safetensors.h"
#include "models/unet.h"

using namespace ich;
namespace fs = std::filesystem;

TEST_CASE("bucketer: gradient buckets hold whole parameters up to the bucket size", "[bucketer]") {
  std::vector<Tensor> params{Tensor::zeros({10}), Tensor::zeros({4, 5}), Tensor::zeros({300}),
                             Tensor::zeros({5})};
  const GradientBucketer bucketer(params, 30 * sizeof(float));
  const auto& buckets = bucketer.buckets();
  REQUIRE(buckets.size() == 3);
  CHECK(buckets[0].numel == 30);  // 10 + 20 fill the first exactly
  REQUIRE(buckets[0].entries.size() == 2);
  CHECK(buckets[0].entries[1].param == 1);
  CHECK(buckets[0].entries[1].offset == 10);
  CHECK(buckets[1].numel == 300);  // larger than a bucket: a bucket of its own, never split
  CHECK(buckets[2].entries[0].param == 3);
  CHECK(buckets[2].entries[0].offset == 0);

  const GradientBucketer one(params);  // 25 MB: everything in one bucket
  CHECK(one.buckets().size() == 1);
  CHECK(one.buckets()[0].numel == 335);
  CHECK_THROWS_AS(GradientBucketer({Tensor::zeros({2}, Device::cpu(), DType::i32)}), Error);
}

TEST_CASE("process group: without mpirun the process group is a single-process world", "[comm]") {
  if (launched_by_mpirun()) {
    WARN("skipped: this test binary itself runs under mpirun");
    return;
  }
  const std::unique_ptr<ProcessGroup> group = open_process_group(5.0);
  ProcessGroup& comm = *group;
  CHECK(comm.rank() == 0);
  CHECK(comm.size() == 1);
  CHECK(comm.is_root());
  comm.barrier();
  std::vector<float> data{1.5f, -2.0f};
  comm.allreduce_sum(data.data(), 2);
  CHECK(data == std::vector<float>{1.5f, -2.0f});

  // Averaging over one rank leaves the gradients as they are.
  Tensor w = Tensor::full({3}, 2.0f).set_requires_grad(true);
  sum(mul(w, w)).backward();
  GradientBucketer bucketer({w});
  bucketer.allreduce_average(comm);
  CHECK(w.grad().to_host() == std::vector<float>{4.0f, 4.0f, 4.0f});

  float byte = 0;
  CHECK_THROWS_AS(comm.send(&byte, sizeof byte, 1, 0), Error);
  CHECK_THROWS_AS(comm.set_timeout_s(0), Error);
}

#ifdef ICH_HAVE_MPI

using test::MpiJob;
using test::run_mpi_job;
using test::succeeded;

namespace {

// Runs `mpirun -np ranks ich_distributed_driver args` (or the driver alone when ranks is 0).
MpiJob run_job(int ranks, const std::string& args) {
  return run_mpi_job({{ranks, ICH_DISTRIBUTED_DRIVER, args}});
}

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(ICH_BINARY_DIR) / "test-scratch" / "distributed";
  fs::create_directories(dir);
  return dir / name;
}

std::vector<float> read_losses(const std::string& path) {
  std::vector<float> losses;
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return losses;
  float v = 0;
  while (std::fscanf(f, "%f", &v) == 1) losses.push_back(v);
  std::fclose(f);
  return losses;
}

// Largest |a - b| over the elements, and the largest |b|.
std::pair<double, double> max_difference(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_host(), y = b.to_host();
  REQUIRE(x.size() == y.size());
  double worst = 0, largest = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, double(std::fabs(x[i] - y[i])));
    largest = std::max(largest, double(std::fabs(y[i])));
  }
  return {worst, largest};
}

double mean_of(const std::vector<float>& v, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / double(end - begin);
}

}  // namespace

TEST_CASE("sync: 2 ranks x batch b give the weights of 1 process accumulating 2 micro-batches",
          "[mpi][sync]") {
  // BatchNorm in training mode normalises each rank's micro-batch with that micro-batch's
  // statistics, exactly as gradient accumulation does for each micro-batch, so the
  // gradients, and hence the weights, agree. The running statistics do not (each rank
  // updates its own once per step, accumulation twice), so only parameters are compared.
  const std::string common = " --steps 4 --batch 2 --dataset 20 --lr 0.01";
  const std::string sync_prefix = scratch("sync").string();
  const std::string acc_prefix = scratch("accumulate").string();
  // 4 KiB buckets: the tiny U-Net's gradients travel in several all-reduce calls.
  succeeded(run_job(2, "--mode sync --bucket-bytes 4096 --out " + sync_prefix + common));
  succeeded(run_job(0, "--mode accumulate --micro 2 --out " + acc_prefix + common));

  const auto distributed = load_safetensors(sync_prefix + ".safetensors").to_tensors();
  const auto accumulated = load_safetensors(acc_prefix + ".safetensors").to_tensors();
  UnetConfig cfg;
  cfg.width = 4;
  cfg.depth = 2;
  cfg.drop_rate = 0;
  Unet initial(cfg, 7);  // the driver's seed for rank 0
  double worst = 0, moved = 0;
  for (const auto& [name, p] : initial.named_parameters()) {
    const std::vector<float> a = distributed.at(name).to_host();
    const std::vector<float> b = accumulated.at(name).to_host();
    const std::vector<float> start = p.to_host();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, double(std::fabs(a[i] - b[i])) / std::max(1.0f, std::fabs(b[i])));
      moved = std::max(moved, double(std::fabs(b[i] - start[i])));
    }
  }
  INFO("worst relative weight difference " << worst);
  CHECK(worst <= 1e-5);
  CHECK(moved > 1e-3);  // 4 Adam steps of lr 0.01 moved the weights: the comparison has teeth
  // The last step's averaged gradients: (g0 + g1) / 2 on both sides. Adam's update hardly
  // changes when all gradients are scaled, so a missing 1/size would pass the weight check.
  double worst_grad = 0, largest_grad = 0;
  for (const auto& [name, p] : initial.named_parameters()) {
    const auto [d, largest] =
        max_difference(distributed.at("grad." + name), accumulated.at("grad." + name));
    worst_grad = std::max(worst_grad, d);
    largest_grad = std::max(largest_grad, largest);
  }
  INFO("worst gradient difference " << worst_grad << ", largest gradient " << largest_grad);
  CHECK(largest_grad > 1e-3);
  CHECK(worst_grad <= 1e-6 * std::max(1.0, largest_grad));

  // The losses of the two ranks average to the accumulated run's (the same micro-batches).
  const std::vector<float> l0 = read_losses(sync_prefix + ".rank0.losses");
  const std::vector<float> l1 = read_losses(sync_prefix + ".rank1.losses");
  const std::vector<float> la = read_losses(acc_prefix + ".rank0.losses");
  REQUIRE(l0.size() == 4);
  REQUIRE(l1.size() == 4);
  REQUIRE(la.size() == 4);
  for (size_t s = 0; s < 4; ++s) CHECK((l0[s] + l1[s]) / 2 == Approx(la[s]).epsilon(1e-5));
  CHECK(l0[0] != l1[0]);  // the ranks did see different samples
}

TEST_CASE("async: training runs to completion and its loss falls", "[mpi][async]") {
  const std::string prefix = scratch("async").string();
  const MpiJob job = succeeded(
      run_job(2, "--mode async --steps 40 --batch 4 --dataset 64 --lr 0.01 --out " + prefix));
  CHECK(job.output.find("async updates=40 rejected=0") != std::string::npos);
  const std::vector<float> losses = read_losses(prefix + ".rank1.losses");
  REQUIRE(losses.size() == 40);
  const double first = mean_of(losses, 0, 8), last = mean_of(losses, 32, 40);
  INFO("mean loss of the first 8 steps " << first << ", of the last 8 " << last);
  CHECK(last < first - 0.1);
  CHECK(fs::exists(prefix + ".safetensors"));
}

TEST_CASE("async: a staleness bound of 0 and two workers completes", "[mpi][async]") {
  const std::string prefix = scratch("async_bounded").string();
  const MpiJob job = succeeded(
      run_job(3, "--mode async --steps 6 --batch 2 --dataset 24 --staleness 0 --out " + prefix));
  // Every worker step is applied once in the end; a rejected push is recomputed.
  CHECK(job.output.find("async updates=12 ") != std::string::npos);
  CHECK(job.output.find("max_staleness=0 ") != std::string::npos);
  CHECK(read_losses(prefix + ".rank1.losses").size() == 6);
  CHECK(read_losses(prefix + ".rank2.losses").size() == 6);
}

TEST_CASE("failure: a rank that dies mid-run ends the job non-zero and the checkpoint survives",
          "[mpi][failure]") {
  const std::string prefix = scratch("dies").string();
  fs::remove(prefix + ".ckpt.safetensors");
  const double timeout = 10;
  const MpiJob job = run_job(2, "--mode sync --steps 100000 --batch 2 --dataset 20 --timeout " +
                                    std::to_string(timeout) +
                                    " --die-at-step 3 --checkpoint-every 1 --out " + prefix);
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.seconds < timeout + 20);
  CHECK(job.output.find("rank 1: dying at step 3") != std::string::npos);
  // Rank 0 wrote a checkpoint after each of the steps both ranks finished; it loads.
  const SafetensorsFile ckpt = load_safetensors(prefix + ".ckpt.safetensors");
  const int step = std::stoi(ckpt.metadata.at("step"));
  CHECK(step >= 1);
  CHECK(step <= 3);
}

TEST_CASE("failure: a rank that hangs makes the others stop with a message within the timeout",
          "[mpi][failure]") {
  const std::string prefix = scratch("hangs").string();
  const double timeout = 5;
  const MpiJob job =
      run_job(2, "--mode sync --steps 100000 --batch 2 --dataset 20 --timeout " +
                     std::to_string(int(timeout)) + " --hang-at-step 2 --out " + prefix);
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.seconds >= timeout);
  CHECK(job.seconds < timeout + 20);
  CHECK(job.output.find("rank 0: no answer from the other ranks within 5 s") != std::string::npos);
}

namespace {

// The samples of the two ranks, rank 0's first: the batch one process holds.
Tensor concat_batch(const Tensor& a, const Tensor& b) {
  std::vector<float> all = a.to_host();
  const std::vector<float> more = b.to_host();
  all.insert(all.end(), more.begin(), more.end());
  Shape shape = a.shape();
  shape[0] += b.shape()[0];
  return Tensor::from_host(all, shape);
}

}  // namespace

TEST_CASE(
    "syncbn: 2 ranks x b samples with synchronised BatchNorm equal 1 process on the 2b "
    "samples, per-rank BatchNorm does not",
    "[mpi][syncbn]") {
  // The driver runs one BatchNorm2d layer, loss sum(y * r), on cpu and cuda-emu, with
  // synchronised BatchNorm on and off; the reference is one process holding all 2b samples.
  const std::string ref_prefix = scratch("syncbn_ref").string();
  const std::string two_prefix = scratch("syncbn_two").string();
  const std::string common = " --mode batchnorm --batch 3 --micro 2 --steps 3";
  succeeded(run_job(0, "--out " + ref_prefix + common));
  succeeded(run_job(2, "--out " + two_prefix + common));
  const auto one = load_safetensors(ref_prefix + ".rank0.safetensors").to_tensors();
  const auto r0 = load_safetensors(two_prefix + ".rank0.safetensors").to_tensors();
  const auto r1 = load_safetensors(two_prefix + ".rank1.safetensors").to_tensors();

  std::vector<std::string> devices{"cpu"};
  if (one.count("cuda-emu.sync.y")) devices.push_back("cuda-emu");
  for (const std::string& device : devices) {
    INFO("device " << device);
    const auto reference = [&](const std::string& what) {
      return one.at(device + ".sync." + what);
    };
    // In one process there is nothing to synchronise: both paths agree (to float rounding).
    for (const char* what : {"y", "dx", "dgamma", "dbeta", "running_mean", "running_var"}) {
      const auto [d, scale] = max_difference(one.at(device + ".local." + what), reference(what));
      INFO(what << ": one process, sync vs per-process BatchNorm differ by " << d);
      CHECK(d <= 1e-5 * std::max(1.0, scale));
    }
    // (a) the layer: output, input gradient, gamma and beta gradients (summed over ranks).
    double worst_sync = 0, worst_local = 0;
    for (const char* what : {"y", "dx", "dgamma", "dbeta"}) {
      const bool per_sample = std::string(what) == "y" || std::string(what) == "dx";
      const std::string sync_key = device + ".sync." + what, local_key = device + ".local." + what;
      const Tensor sync =
          per_sample ? concat_batch(r0.at(sync_key), r1.at(sync_key)) : r0.at(sync_key);
      const Tensor local =
          per_sample ? concat_batch(r0.at(local_key), r1.at(local_key)) : r0.at(local_key);
      const auto [ds, scale] = max_difference(sync, reference(what));
      const auto [dl, unused] = max_difference(local, reference(what));
      INFO(what << ": synchronised differs by " << ds << ", per-rank by " << dl << " (largest "
                << scale << ")");
      CHECK(ds <= 2e-5 * std::max(1.0, scale));
      worst_sync = std::max(worst_sync, ds / std::max(1.0, scale));
      worst_local = std::max(worst_local, dl / std::max(1.0, scale));
    }
    // The same comparison with per-rank statistics fails by far: the test has teeth.
    INFO("worst relative difference: synchronised " << worst_sync << ", per-rank " << worst_local);
    CHECK(worst_local > 1e-2);
    // (b) after 3 steps the running statistics are the same bits on both ranks, and those of
    // one process on the whole batch; per-rank statistics are not.
    for (const char* what : {"running_mean", "running_var"}) {
      const std::string sync_key = device + ".sync." + what, local_key = device + ".local." + what;
      CHECK(r0.at(sync_key).to_host() == r1.at(sync_key).to_host());
      const auto [ds, scale] = max_difference(r0.at(sync_key), reference(what));
      INFO(what << " differs from one process's by " << ds);
      CHECK(ds <= 1e-5 * std::max(1.0, scale));
      CHECK(max_difference(r0.at(local_key), r1.at(local_key)).first > 1e-3);
    }
  }
}

#endif  // ICH_HAVE_MPI
