// `ichseg report --compare NAME=RUN_DIR ...`: one SVG of several runs' curves per epoch (the
// figure of bench/bench_distributed.sh), and its bad input.
#include <catch2/catch.hpp>
#include <string>

#include "cli_test_util.h"

using namespace ich::test;
using Catch::Matchers::Contains;

namespace {

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("cli: report --compare draws several runs' curves into one SVG", "[cli]") {
  TempDir dir("compare");
  make_tiny_dataset(dir);
  for (const char* run : {"one", "two"}) {
    auto args = tiny_train_args(dir, run, 2);
    if (std::string(run) == "two") args.insert(args.end(), {"--weight-decay", "0.01"});
    const Result r = run_ichseg_ok(args);
  }
  const std::string svg_path = dir / "curves.svg";
  run_ichseg_ok({"report", "--compare", "alpha=" + (dir / "one"), "--compare",
                 "beta=" + (dir / "two"), "--out", svg_path});
  const std::string svg = read_text(svg_path);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(count_of(svg, "<svg") == 4);  // the figure and its three charts
  CHECK(count_of(svg, "</svg>") == 4);
  for (const char* title : {"Validation loss", "Validation Dice", "Training loss"})
    CHECK_THAT(svg, Contains(title));
  // One line per run in each chart, named in each legend: 2 runs x 3 charts.
  CHECK(count_of(svg, "<polyline") == 6);
  CHECK(count_of(svg, ">alpha</text>") == 3);
  CHECK(count_of(svg, ">beta</text>") == 3);

  const Result no_name = run_ichseg({"report", "--compare", dir / "one", "--out", svg_path});
  CHECK(no_name.exit_code != 0);
  CHECK_THAT(no_name.err, Contains("is not NAME=RUN_DIR"));
  const Result missing =
      run_ichseg({"report", "--compare", "x=" + (dir / "nothing"), "--out", svg_path});
  CHECK(missing.exit_code != 0);
  CHECK_THAT(missing.err, Contains("has no log.csv"));
  const Result no_out = run_ichseg({"report", "--compare", "a=" + (dir / "one")});
  CHECK(no_out.exit_code != 0);
  CHECK_THAT(no_out.err, Contains("--compare needs --out"));
}
