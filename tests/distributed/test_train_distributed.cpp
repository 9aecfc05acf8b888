// `ichseg train --distributed sync|async` under `mpirun --oversubscribe -np N`, on the tiny
// synthetic dataset of the cli tests: synchronous training equals one process accumulating
// the same micro-batches, only rank 0 writes the run folder, a distributed run resumes
// exactly, synchronised BatchNorm makes 2 ranks step as one process on both ranks' samples,
// async training runs and its loss falls, a killed or hung rank ends the job within the
// timeout with the last checkpoint intact, and the refusals.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cli/cli_test_util.h"
#include "distributed/mpi_job.h"
#include "engine/safetensors.h"
#include "models/unet.h"

#ifdef ICH_HAVE_MPI

using namespace ich::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// `mpirun -np ranks[0] ichseg args[0] : -np ranks[1] ichseg args[1] ...` (an MPMD job: the
// ranks of each part get that part's arguments), or ichseg alone when ranks is {0}.
MpiJob run_parts(const std::vector<int>& ranks, const std::vector<std::vector<std::string>>& args) {
  const std::string ichseg = std::string(ICH_BINARY_DIR) + "/apps/ichseg";
  std::vector<MpiJobPart> parts;
  for (size_t i = 0; i < ranks.size(); ++i)
    parts.push_back({ranks[i], ichseg, shell_quoted(args[i])});
  return run_mpi_job(parts);
}

MpiJob run_job(int ranks, const std::vector<std::string>& args) {
  return run_parts({ranks}, {args});
}

// A tiny run without dropout (so one process can reproduce the ranks' masks): width 4,
// batch 2; make_tiny_dataset's 18 training slices are 9 per shard of 2, 5 steps per epoch.
std::vector<std::string> train_args(const TempDir& dir, const std::string& run, int epochs,
                                    const std::string& mode, const std::string& drop = "0") {
  return {"train",
          "--data",
          dir / "prepared",
          "--out",
          dir / run,
          "--width",
          "4",
          "--epochs",
          std::to_string(epochs),
          "--batch",
          "2",
          "--lr",
          "0.01",
          "--drop-rate",
          drop,
          "--seed",
          "5",
          "--val-samples",
          "2",
          "--distributed",
          mode};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

bool is_parameter(const std::string& name) {
  return name.rfind("optimizer.", 0) != 0 && name.find("running_") == std::string::npos &&
         name.find("num_batches") == std::string::npos;
}

// The value of column `column` of every data row of a log.csv.
std::vector<double> log_column(const std::string& path, int column) {
  std::istringstream in(read_text(path));
  std::string line;
  std::vector<double> values;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string field;
    for (int c = 0; c <= column; ++c) std::getline(fields, field, ',');
    values.push_back(std::stod(field));
  }
  return values;
}

ich::SafetensorsFile last_checkpoint(const TempDir& dir, const std::string& run) {
  return ich::load_safetensors(dir / (run + "/checkpoints/last.safetensors"));
}

// Runs a and b ended the same: their last checkpoints hold the same bytes in every tensor
// (weights, BatchNorm statistics, Adam state) and they logged the same training losses.
void check_same_end(const TempDir& dir, const std::string& a, const std::string& b) {
  const ich::SafetensorsFile ca = last_checkpoint(dir, a), cb = last_checkpoint(dir, b);
  REQUIRE(ca.tensors.size() == cb.tensors.size());
  size_t differing = 0;
  for (const auto& [name, t] : ca.tensors) differing += cb.tensors.at(name).bytes != t.bytes;
  CHECK(differing == 0);
  CHECK(log_column(dir / (a + "/log.csv"), 1) == log_column(dir / (b + "/log.csv"), 1));
}

}  // namespace

TEST_CASE("train sync: 2 ranks x batch b equal 1 process accumulating 2 micro-batches of b",
          "[mpi][train]") {
  TempDir dir("train-sync");
  make_tiny_dataset(dir);
  // BatchNorm momentum 0 keeps the running statistics at their start on both sides (the
  // ranks update theirs once per step, accumulation twice), so validation must agree too:
  // the sync job's is sharded over the ranks and reduced, the reference's is one process's.
  const auto args = [&](const std::string& run) {
    return with(train_args(dir, run, 2, "sync"), {"--bn-momentum", "0"});
  };
  // Rank 1 gets another --out: it must write nothing there (only rank 0 writes).
  const MpiJob sync = succeeded(run_parts({1, 1}, {args("sync"), args("rank1")}));
  CHECK_THAT(sync.output, Contains("x 2 ranks (sync)"));
  CHECK(!fs::exists(dir / "rank1"));
  // The reference: one process (a world of one), the same 2 shards as micro-batches.
  succeeded(run_job(0, with(args("accumulate"), {"--accumulate", "2"})));

  const ich::SafetensorsFile a = last_checkpoint(dir, "sync"),
                             b = last_checkpoint(dir, "accumulate");
  CHECK(a.metadata.at("train.global_step") == "10");
  CHECK(a.metadata.at("train.shards") == "2");
  const auto ta = a.to_tensors(), tb = b.to_tensors();
  ich::UnetConfig cfg;
  cfg.width = 4;
  cfg.drop_rate = 0;
  cfg.bn_momentum = 0;
  const auto initial = ich::Unet(cfg, 5).state_dict();
  double worst = 0, moved = 0, worst_moment = 0, largest_moment = 0;
  size_t parameters = 0;
  for (const auto& [name, start] : initial) {
    if (!is_parameter(name)) continue;
    ++parameters;
    const std::vector<float> x = ta.at(name).to_host(), y = tb.at(name).to_host();
    const std::vector<float> s = start.to_host();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      worst = std::max(worst, double(std::fabs(x[i] - y[i])) / std::max(1.0f, std::fabs(y[i])));
      moved = std::max(moved, double(std::fabs(y[i] - s[i])));
    }
    // Adam's first moment is proportional to the gradients' scale, which the weights
    // hardly show: a wrong 1/ranks or 1/micro-batches factor fails here.
    const std::vector<float> mx = ta.at("optimizer." + name + ".exp_avg").to_host();
    const std::vector<float> my = tb.at("optimizer." + name + ".exp_avg").to_host();
    for (size_t i = 0; i < mx.size(); ++i) {
      worst_moment = std::max(worst_moment, double(std::fabs(mx[i] - my[i])));
      largest_moment = std::max(largest_moment, double(std::fabs(my[i])));
    }
  }
  INFO("worst relative weight difference " << worst << ", moved " << moved
                                           << "; worst first-moment difference " << worst_moment
                                           << " of " << largest_moment);
  CHECK(parameters > 20);
  CHECK(worst <= 1e-4);
  CHECK(moved > 1e-3);  // 10 Adam steps at lr 0.01: the comparison has teeth
  CHECK(largest_moment > 1e-4);
  CHECK(worst_moment <= 1e-3 * largest_moment);
  // The logged training loss is the mean over both ranks' samples, as the accumulated one.
  const std::vector<double> la = log_column(dir / "sync/log.csv", 1);
  const std::vector<double> lb = log_column(dir / "accumulate/log.csv", 1);
  REQUIRE(la.size() == 2);
  REQUIRE(lb.size() == 2);
  for (size_t e = 0; e < 2; ++e) CHECK(la[e] == Approx(lb[e]).epsilon(1e-4));
  // Validation loss, Dice, Jaccard (columns 2-4) of the sharded validation.
  for (int column = 2; column <= 4; ++column) {
    const std::vector<double> va = log_column(dir / "sync/log.csv", column);
    const std::vector<double> vb = log_column(dir / "accumulate/log.csv", column);
    REQUIRE(va.size() == 2);
    REQUIRE(vb.size() == 2);
    for (size_t e = 0; e < 2; ++e) CHECK(va[e] == Approx(vb[e]).margin(1e-5));
  }
}

TEST_CASE("train sync: a distributed run stopped mid-epoch resumes exactly", "[mpi][train]") {
  TempDir dir("train-resume");
  make_tiny_dataset(dir);
  // Dropout on: each rank draws its own masks, and resuming must restore their positions.
  const auto args = [&](const std::string& run) { return train_args(dir, run, 2, "sync", "0.2"); };
  succeeded(run_job(2, args("whole")));
  const MpiJob part1 = succeeded(run_job(2, with(args("parts"), {"--stop-at-step", "3"})));
  CHECK_THAT(part1.output, Contains("stopped at step 3"));
  // Another number of ranks would cut the epoch into other shards: refused.
  check_failed_with(run_job(0, {"train", "--out", dir / "parts", "--resume"}),
                    "cannot resume: the run was trained on 2 shards");
  const MpiJob part2 = succeeded(run_job(2, {"train", "--out", dir / "parts", "--resume"}));
  CHECK_THAT(part2.output, Contains("resuming after epoch 0 step 3"));

  check_same_end(dir, "whole", "parts");  // bit for bit
  CHECK(last_checkpoint(dir, "whole").metadata.at("rng.dropout.offset") ==
        last_checkpoint(dir, "parts").metadata.at("rng.dropout.offset"));
}

TEST_CASE(
    "train sync --sync-bn: 2 ranks x batch b step as 1 process with batch 2b, resume exactly, "
    "the loss falls",
    "[mpi][train][syncbn]") {
  TempDir dir("train-syncbn");
  make_tiny_dataset(dir);
  // BCE is a mean over pixels, so with equal shards the mean of the two ranks' losses is the
  // loss of one process on both ranks' samples, and (synchronised BatchNorm making the
  // statistics those of the whole batch) the averaged gradient is that process's gradient.
  // The ranks' shards by stride, batch 2, are the positions 4k, 4k+2 and 4k+1, 4k+3 of the
  // epoch order: one process with batch 4 takes the same samples in each step.
  const auto args = [&](const std::string& run, const std::string& batch,
                        const std::string& mode = "sync") {
    auto a = train_args(dir, run, 2, mode);
    *(std::find(a.begin(), a.end(), "--batch") + 1) = batch;
    return with(a, {"--loss", "bce"});
  };
  const MpiJob whole = succeeded(run_job(2, with(args("whole", "2"), {"--sync-bn"})));
  CHECK_THAT(whole.output, Contains("x 2 ranks (sync, synchronised BatchNorm)"));
  const std::vector<double> loss = log_column(dir / "whole/log.csv", 1);
  REQUIRE(loss.size() == 2);
  CHECK(loss[1] < loss[0] - 0.02);

  // One step, then compare with one process taking the 4 samples in one batch.
  succeeded(run_job(2, with(args("parts", "2"), {"--sync-bn", "--stop-at-step", "1"})));
  succeeded(run_job(0, with(args("one", "4", "none"), {"--stop-at-step", "1"})));
  {
    const auto a = last_checkpoint(dir, "parts").to_tensors();
    const auto b = last_checkpoint(dir, "one").to_tensors();
    // Adam's first moment after one step is 0.1 x the gradient (the weights themselves are not
    // compared: Adam's first step moves every weight by about lr x sign(gradient), so a
    // gradient that is 0 up to rounding moves by lr either way).
    double worst_moment = 0, largest_moment = 0, worst_stat = 0, largest_stat = 0;
    size_t moments = 0, stats = 0;
    for (const auto& [name, t] : b) {
      const bool moment = name.find(".exp_avg") != std::string::npos;
      const bool stat = name.find("running_") != std::string::npos;
      if (!moment && !stat) continue;
      (moment ? moments : stats) += 1;
      const std::vector<float> x = a.at(name).to_host(), y = t.to_host();
      for (size_t i = 0; i < x.size(); ++i) {
        (moment ? worst_moment : worst_stat) =
            std::max(moment ? worst_moment : worst_stat, double(std::fabs(x[i] - y[i])));
        (moment ? largest_moment : largest_stat) =
            std::max(moment ? largest_moment : largest_stat, double(std::fabs(y[i])));
      }
    }
    INFO("first moments differ by " << worst_moment << " of " << largest_moment
                                    << "; running statistics by " << worst_stat << " of "
                                    << largest_stat);
    CHECK(moments > 20);
    CHECK(stats > 10);
    CHECK(largest_moment > 1e-3);
    CHECK(worst_moment <= 1e-5 * largest_moment);  // per-rank BatchNorm: 0.11 of it
    CHECK(worst_stat <= 1e-5 * largest_stat);      // per-rank BatchNorm: 0.014 of 0.97
  }

  // Resuming without synchronised BatchNorm is refused; as recorded, it ends as the whole run.
  check_failed_with(run_job(2, {"train", "--out", dir / "parts", "--resume", "--no-sync-bn"}),
                    "cannot resume: the run was trained with --sync-bn");
  const MpiJob part2 = succeeded(run_job(2, {"train", "--out", dir / "parts", "--resume"}));
  CHECK_THAT(part2.output, Contains("synchronised BatchNorm"));
  check_same_end(dir, "whole", "parts");
  CHECK(last_checkpoint(dir, "whole").metadata.at("train.sync_bn") == "1");
}

TEST_CASE("train async: a parameter server and 2 workers run to completion, the loss falls",
          "[mpi][train]") {
  TempDir dir("train-async");
  make_tiny_dataset(dir);
  // Workers take 2 shards of 9 slices: 5 pushes each per epoch, 10 updates per epoch.
  const MpiJob job = succeeded(run_job(3, train_args(dir, "async", 4, "async")));
  CHECK_THAT(job.output, Contains("async: 40 updates, 0 rejected"));
  const std::vector<double> loss = log_column(dir / "async/log.csv", 1);
  REQUIRE(loss.size() == 4);
  CHECK(loss[3] < loss[0] - 0.05);
  CHECK(last_checkpoint(dir, "async").metadata.at("train.global_step") == "40");
  // Staleness bound 0: a push computed on outdated weights is rejected and the worker redoes
  // the same batch, so every batch is still applied exactly once, never stale.
  const MpiJob bounded =
      succeeded(run_job(3, with(train_args(dir, "bounded", 2, "async"), {"--staleness", "0"})));
  CHECK_THAT(bounded.output, Contains("async: 20 updates, "));
  CHECK_THAT(bounded.output, Contains("staleness mean 0 max 0"));
}

TEST_CASE(
    "train sync: a killed rank ends the job non-zero within the timeout, the checkpoint "
    "survives",
    "[mpi][train]") {
  TempDir dir("train-killed");
  make_tiny_dataset(dir);
  const double timeout = 10;
  // Rank 1 dies (SIGKILL) before step 8, in the second epoch of 5 steps.
  const MpiJob job = run_job(2, with(train_args(dir, "killed", 50, "sync"),
                                     {"--kill-at-step", "8", "--mpi-timeout", "10"}));
  INFO(job.output);
  CHECK(job.exit_code != 0);
  CHECK(job.seconds < timeout + 30);
  CHECK_THAT(job.output, Contains("rank 1: killing itself before step 8"));
  const ich::SafetensorsFile last = last_checkpoint(dir, "killed");
  CHECK(last.metadata.at("train.epochs_done") == "1");
  CHECK(log_column(dir / "killed/log.csv", 1).size() == 1);
}

TEST_CASE(
    "train sync and async: a hung rank ends the job non-zero with a message within the "
    "timeout, the checkpoint survives",
    "[mpi][train]") {
  TempDir dir("train-hung");
  make_tiny_dataset(dir);
  // Rank 1 stops answering (sleeps forever) in the second epoch: sync before step 8 of 5 per
  // epoch, async before its update 12 of 9 per epoch. Rank 0 waits --mpi-timeout seconds in
  // the gradient all-reduce (sync) or for the next push (async), then ends the whole job.
  const double timeout = 3;
  for (const auto& [mode, step, during] :
       {std::tuple<std::string, std::string, std::string>{"sync", "8", "a gradient all-reduce"},
        std::tuple<std::string, std::string, std::string>{"async", "12", "a receive"}}) {
    INFO(mode);
    const MpiJob job = run_job(
        2, with(train_args(dir, mode, 50, mode), {"--hang-at-step", step, "--mpi-timeout", "3"}));
    INFO(job.output);
    CHECK(job.exit_code != 0);
    CHECK(job.seconds >= timeout);
    CHECK(job.seconds < timeout + 30);  // the first epoch included; measured 5 s in all
    CHECK_THAT(job.output, Contains("rank 1: hanging before step " + step));
    CHECK_THAT(job.output, Contains("rank 0: no answer from the other ranks within 3 s during " +
                                    during + " (a rank died or hangs"));
    const ich::SafetensorsFile last = last_checkpoint(dir, mode);
    CHECK(last.metadata.at("train.epochs_done") == "1");
    CHECK(log_column(dir / (mode + "/log.csv"), 1).size() == 1);
  }
}

TEST_CASE("train distributed: what is refused, with a message", "[mpi][train]") {
  TempDir dir("train-refused");
  make_tiny_dataset(dir);
  check_failed_with(run_job(2, train_args(dir, "none", 1, "none")), "but --distributed is none");
  CHECK(!fs::exists(dir / "none"));
  check_failed_with(run_job(0, train_args(dir, "async", 1, "async")),
                    "needs rank 0 as the parameter server");
  // An error inside the training of a rank ends the whole job, with the message.
  auto diverging = train_args(dir, "nan", 3, "sync");
  *(std::find(diverging.begin(), diverging.end(), "--lr") + 1) = "1e38";
  check_failed_with(run_job(2, diverging), ": ichseg train: error: the loss became NaN at epoch 1");
  // Synchronised BatchNorm needs a synchronous job: one line, non-zero, nothing written.
  for (const std::string mode : {"none", "async"}) {
    const MpiJob sync_bn = run_job(0, with(train_args(dir, "syncbn", 1, mode), {"--sync-bn"}));
    check_failed_with(sync_bn,
                      "--sync-bn synchronises BatchNorm over the ranks of a --distributed sync "
                      "job; this run is --distributed " +
                          mode);
    CHECK(std::count(sync_bn.output.begin(), sync_bn.output.end(), '\n') == 1);
    CHECK(!fs::exists(dir / "syncbn"));
  }
  check_failed_with(run_job(0, train_args(dir, "bad", 1, "allreduce")),
                    "is not one of none, sync, async");
}

#endif  // ICH_HAVE_MPI
