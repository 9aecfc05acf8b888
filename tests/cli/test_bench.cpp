// `ichseg bench` in tiny configurations: each mode writes CSV, markdown and SVG with the
// expected columns and rows; cuda rows say "not measured: no GPU" where there is none (and
// carry numbers where there is one); the caching allocator's counts differ on and off; bad
// arguments give one line and a non-zero exit.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <sstream>

#include "apps/report.h"  // read_csv
#include "bench/harness/measurement.h"
#include "cli_test_util.h"

using namespace ich::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The model and step counts of every case: a width-2, depth-2 U-Net on 16x16 images.
const std::vector<std::string> kTiny = {"--width", "2", "--depth", "2", "--warmup", "0"};

std::vector<std::string> with_tiny(std::vector<std::string> args) {
  args.insert(args.end(), kTiny.begin(), kTiny.end());
  return args;
}

double number(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  INFO("'" << s << "'");
  REQUIRE(!s.empty());
  REQUIRE(*end == '\0');
  return v;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// The files of one mode exist and agree: the CSV's header is `columns`, the markdown holds the
// command and the same table, the SVG is one balanced document.
ich::app::CsvTable check_outputs(const TempDir& dir, const std::string& mode,
                                 const std::vector<std::string>& columns, size_t rows) {
  const ich::app::CsvTable csv = ich::app::read_csv(dir / (mode + ".csv"));
  CHECK(csv.columns == columns);
  CHECK(csv.rows.size() == rows);
  const std::string md = read_text(dir / (mode + ".md"));
  CHECK_THAT(md, Contains("Command: `ichseg bench " + mode));
  CHECK_THAT(md, Contains("load average"));
  std::string header = "|";
  for (const auto& c : columns) header += " " + c + " |";
  CHECK_THAT(md, Contains(header));
  CHECK(count(md, "\n|") == rows + 2);  // header, rule, rows
  const std::string svg = read_text(dir / (mode + ".svg"));
  CHECK_THAT(svg, StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK(count(svg, "<svg") == count(svg, "</svg>"));
  CHECK(count(svg, "<g ") == count(svg, "</g>"));
  CHECK(svg.find("nan") == std::string::npos);
  return csv;
}

std::string cell(const ich::app::CsvTable& t, size_t row, const std::string& column) {
  const int c = t.column(column);
  REQUIRE(c >= 0);
  return t.rows.at(row).at(size_t(c));
}

}  // namespace

TEST_CASE("cli: bench epoch times cpu and cuda-emu and marks cuda without a GPU", "[cli]") {
  TempDir dir("bench-epoch");
  run_ichseg_ok(with_tiny({"bench", "epoch", "--out", dir.str(), "--devices", "cpu,cuda-emu,cuda",
                           "--size", "16", "--batch", "2", "--epoch-images", "4"}));
  const auto t = check_outputs(
      dir, "epoch",
      {"device", "status", "width", "size", "batch", "images", "epoch_s", "step_s_median",
       "images_per_s", "speedup_vs_cpu", "peak_rss_mib", "tensor_peak_mib"},
      3);
  CHECK(cell(t, 0, "device") == "cpu");
  CHECK(cell(t, 0, "status") == "measured");
  CHECK(number(cell(t, 0, "images")) == 4);
  CHECK(number(cell(t, 0, "epoch_s")) > 0);
  CHECK(number(cell(t, 0, "speedup_vs_cpu")) == 1);
  CHECK(number(cell(t, 0, "peak_rss_mib")) > 1);
  CHECK(cell(t, 1, "device") == "cuda-emu");
  CHECK(cell(t, 1, "status") == "measured: emulated on the CPU, not GPU time");
  CHECK(number(cell(t, 1, "epoch_s")) > 0);
  CHECK(number(cell(t, 1, "speedup_vs_cpu")) > 0);
  CHECK(cell(t, 2, "device") == "cuda");
  if (ich::bench::gpu_present()) {
    CHECK(cell(t, 2, "status") == "measured");
    CHECK(number(cell(t, 2, "epoch_s")) > 0);
  } else {
    CHECK_THAT(cell(t, 2, "status"), StartsWith("not measured: no GPU"));
    CHECK(cell(t, 2, "epoch_s").empty());
    CHECK(cell(t, 2, "speedup_vs_cpu").empty());
  }
}

TEST_CASE("cli: bench sweep runs the grid and skips what the memory limit forbids", "[cli]") {
  TempDir dir("bench-sweep");
  // A limit just under the largest configuration's estimate: that one row is skipped.
  const double largest = ich::bench::estimate_train_bytes(2, 2, 24, 2);
  REQUIRE(largest > ich::bench::estimate_train_bytes(2, 2, 16, 2));
  REQUIRE(largest > ich::bench::estimate_train_bytes(2, 2, 24, 1));
  std::ostringstream limit;
  limit.precision(17);
  limit << largest * 0.999 / (1024.0 * 1024.0 * 1024.0);
  run_ichseg_ok(
      with_tiny({"bench", "sweep", "--out", dir.str(), "--devices", "cpu,cuda", "--sizes", "16,24",
                 "--batches", "1,2", "--steps", "1", "--mem-limit-gb", limit.str()}));
  const auto t = check_outputs(dir, "sweep",
                               {"device", "status", "width", "size", "batch", "ms_per_image",
                                "step_s", "peak_rss_mib", "tensor_peak_mib", "estimate_mib"},
                               8);
  for (size_t i = 0; i < 4; ++i) {
    INFO("row " << i);
    CHECK(cell(t, i, "device") == "cpu");
    const bool largest_row = cell(t, i, "size") == "24" && cell(t, i, "batch") == "2";
    if (largest_row) {
      CHECK_THAT(cell(t, i, "status"), StartsWith("skipped: estimated"));
      CHECK_THAT(cell(t, i, "status"), Contains("--mem-limit-gb"));
      CHECK(cell(t, i, "ms_per_image").empty());
      continue;
    }
    CHECK(cell(t, i, "status") == "measured");
    CHECK(number(cell(t, i, "ms_per_image")) > 0);
    CHECK(number(cell(t, i, "ms_per_image")) ==
          Approx(1e3 * number(cell(t, i, "step_s")) / number(cell(t, i, "batch"))).epsilon(1e-3));
    // The estimate that decides what to skip is an upper bound of what a step holds.
    CHECK(number(cell(t, i, "tensor_peak_mib")) > 0);
    CHECK(number(cell(t, i, "tensor_peak_mib")) <= number(cell(t, i, "estimate_mib")));
  }
  for (size_t i = 4; i < 8; ++i) {
    CHECK(cell(t, i, "device") == "cuda");
    if (!ich::bench::gpu_present())
      CHECK_THAT(cell(t, i, "status"), StartsWith("not measured: no GPU"));
  }
}

TEST_CASE("cli: bench threads gives a speedup per thread count and the GPU columns", "[cli]") {
  TempDir dir("bench-threads");
  const Result r =
      run_ichseg_ok(with_tiny({"bench", "threads", "--out", dir.str(), "--threads", "1,2", "--size",
                               "16", "--batch", "2", "--steps", "1", "--rounds", "2"}));
  // Two rounds, the configurations alternating: 1, 2, 1, 2 threads.
  const size_t first = r.out.find("cpu, 1 thread(s) [round 1/2]");
  const size_t second = r.out.find("cpu, 2 thread(s) [round 1/2]");
  const size_t third = r.out.find("cpu, 1 thread(s) [round 2/2]");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  REQUIRE(third != std::string::npos);
  CHECK((first < second && second < third));
  CHECK_THAT(read_text(dir / "threads.md"), Contains("ran 2 times, alternating"));
  const auto t = check_outputs(dir, "threads",
                               {"threads", "status", "width", "size", "batch", "step_s",
                                "speedup_vs_1_thread", "gpu_step_s", "gpu_speedup_over_cpu"},
                               2);
  CHECK(cell(t, 0, "threads") == "1");
  CHECK(cell(t, 1, "threads") == "2");
  CHECK(number(cell(t, 0, "speedup_vs_1_thread")) == 1);
  CHECK(number(cell(t, 1, "speedup_vs_1_thread")) ==
        Approx(number(cell(t, 0, "step_s")) / number(cell(t, 1, "step_s"))).epsilon(1e-3));
  if (!ich::bench::gpu_present()) {
    CHECK_THAT(cell(t, 0, "gpu_step_s"), StartsWith("not measured: no GPU"));
    CHECK_THAT(cell(t, 1, "gpu_speedup_over_cpu"), StartsWith("not measured: no GPU"));
  }
}

TEST_CASE("cli: bench allocator counts allocations with caching on and off", "[cli]") {
  TempDir dir("bench-allocator");
  run_ichseg_ok({"bench", "allocator", "--out", dir.str(), "--devices", "cuda-emu,cuda", "--width",
                 "2", "--depth", "2", "--size", "16", "--batch", "2", "--steps", "2", "--warmup",
                 "1"});
  const bool gpu = ich::bench::gpu_present();
  // 2 rows per device; then 3 convolution and 2 SGEMM rows without a GPU (with one, three
  // passes of the convolution variants, cuDNN's only in a build with cuDNN, and 2 SGEMM rows).
  const size_t gpu_rows = ich::app::read_csv(dir / "allocator.csv").rows.size();
  if (gpu) CHECK(gpu_rows >= 4 + 9);
  const auto t = check_outputs(dir, "allocator",
                               {"what", "device", "variant", "status", "time_ms", "allocs_per_step",
                                "cache_hits_per_step", "tensor_peak_mib", "peak_rss_mib"},
                               gpu ? gpu_rows : 4 + 5);
  CHECK(cell(t, 0, "device") == "cuda-emu");
  CHECK(cell(t, 0, "variant") == "caching on");
  CHECK(cell(t, 1, "variant") == "caching off");
  CHECK_THAT(cell(t, 0, "status"), Contains("emulated on the CPU, not GPU time"));
  // Warm, the caching allocator serves every request from its free lists; off, every tensor
  // of the step is a fresh device allocation.
  CHECK(number(cell(t, 0, "allocs_per_step")) < number(cell(t, 1, "allocs_per_step")));
  CHECK(number(cell(t, 1, "allocs_per_step")) > 10);
  CHECK(number(cell(t, 0, "cache_hits_per_step")) > 10);
  CHECK(number(cell(t, 1, "cache_hits_per_step")) == 0);
  if (!gpu) {
    CHECK_THAT(cell(t, 2, "status"), StartsWith("not measured: no GPU"));
    for (size_t i = 4; i < t.rows.size(); ++i) {
      CHECK_THAT(cell(t, i, "status"), StartsWith("not measured: no GPU"));
      CHECK(cell(t, i, "time_ms").empty());
    }
    CHECK(cell(t, 4, "variant") == "im2col+our SGEMM");
    CHECK(cell(t, 6, "variant") == "cuDNN");
    CHECK(cell(t, 8, "variant") == "cuBLAS");
  }
}

TEST_CASE("cli: bench refuses bad arguments with one line and a non-zero exit", "[cli]") {
  TempDir dir("bench-errors");
  auto one_line = [](const Result& r, const std::string& expected) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.signal == 0);
    CHECK(line_count(r.err) == 1);
    CHECK_THAT(r.err, Contains(expected));
  };
  one_line(run_ichseg({"bench"}), "mode is required");
  one_line(run_ichseg({"bench", "speed", "--out", dir.str()}),
           "unknown mode 'speed': use epoch, sweep, threads, allocator or all");
  one_line(run_ichseg({"bench", "sweep", "--sizes", "32,3", "--out", dir.str()}),
           "--sizes 3 is out of range");
  one_line(run_ichseg({"bench", "sweep", "--batches", "ten", "--out", dir.str()}), "--batches");
  one_line(run_ichseg({"bench", "epoch", "--devices", "cpu,tpu", "--out", dir.str()}), "tpu");
  one_line(run_ichseg({"bench", "allocator", "--devices", "cpu", "--out", dir.str()}),
           "--devices must name cuda-emu or cuda");
  one_line(run_ichseg({"bench", "threads", "--threads", "0", "--out", dir.str()}),
           "--threads 0 is out of range");
  one_line(run_ichseg({"bench", "epoch", "--width", "0", "--out", dir.str()}), "--width");
  one_line(run_ichseg({"bench", "__child", "task=train", "colour=blue"}),
           "unknown setting 'colour'");
  // A child that fails is a row that says why, not a crash of the whole command.
  run_ichseg_ok(with_tiny({"bench", "epoch", "--out", dir.str(), "--devices", "cpu", "--size", "16",
                           "--batch", "2", "--epoch-images", "2", "--timeout-s", "0.001"}));
  const auto t = ich::app::read_csv(dir / "epoch.csv");
  REQUIRE(t.rows.size() == 1);
  CHECK_THAT(cell(t, 0, "status"), StartsWith("failed: timed out after"));
}
