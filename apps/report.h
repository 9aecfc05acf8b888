// `ichseg report RUN_DIR`: one self-contained HTML page about a training run.
//
// What it reads from RUN_DIR (every part is optional except the log):
//   log.csv        one row per epoch: epoch,train_loss,val_loss,val_dice,val_jaccard,lr,seconds,images_per_s
//   config.json    the run's configuration (flags, model, data, device, seed)
//   eval.json      written by `ichseg eval --json`: the metrics table and the ICH protocol figures
//   samples/*.png  validation slices saved during training (image | truth | prediction)
//   overlays/*.png predicted overlays written by eval or predict
// Images are embedded as data URIs and the curves are inline SVG, so the page is one file
// that can be mailed or archived with nothing beside it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "apps/svg_plot.h"  // svg_line_chart, html_escape

namespace ich::app {

struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  int column(const std::string& name) const;  // -1 when absent
};

// Parses a comma-separated file (RFC 4180 quoting) with a header line; throws ich::Error
// naming the file and line when a row has the wrong number of fields.
CsvTable read_csv(const std::string& path);

std::string base64_encode(const std::string& bytes);

// `ichseg report --compare NAME=RUN_DIR ...`: one standalone SVG with the curves of several
// runs per epoch side by side (validation loss, validation Dice, training loss; one line per
// run), e.g. local, sync and async training (bench/bench_distributed.sh). Throws ich::Error
// naming a run without a readable log.csv.
std::string compare_runs_svg(const std::vector<std::pair<std::string, std::string>>& runs);

// Writes RUN_DIR/report.html (through a temporary file and a rename) and returns its path.
std::string write_report(const std::string& run_dir, const std::string& out_path = "");

}  // namespace ich::app
