// ichseg prepare --data DIR --out DIR [--wl 40 --ww 120] [--only-hemorrhage]: windowed
// 8-bit PNG slices (image/), masks of the same name (label/) and manifest.csv with a
// patient-level split.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "apps/scan_input.h"
#include "data/prepare.h"

namespace {

int run_prepare(int argc, char** argv) {
  CLI::App app{
      "Turn a CT-ICH dataset (real or synthetic) into windowed PNG slices, masks and a manifest",
      "ichseg prepare"};
  ich::data::PrepareOptions o;
  app.add_option("--data", o.data_dir,
                 "CT-ICH folder: ct_scans/ (NNN.nii or NNN/ of DICOM files), masks/, "
                 "hemorrhage_diagnosis_raw_ct.csv")
      ->required();
  app.add_option("--out", o.out_dir,
                 "output folder (created; an earlier prepare output is replaced)")
      ->required();
  app.add_option("--wl", o.wl, "window level (HU)")->capture_default_str();
  app.add_option("--ww", o.ww, "window width (HU)")->capture_default_str();
  app.add_flag("--only-hemorrhage", o.only_hemorrhage, "write only slices whose mask is not empty");
  app.add_option("--seed", o.split.seed, "seed of the patient split")->capture_default_str();
  app.add_option("--val-fraction", o.split.val_fraction, "fraction of patients in the val split")
      ->capture_default_str();
  app.add_option("--folds", o.split.folds, "k >= 2: k folds (fold0..) instead of train/val")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "slices written in parallel (0: one per core)")
      ->capture_default_str();
  ich::app::ScanFlags scan;
  scan.add_to(app);
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  o.scan = scan.options();
  const auto start = std::chrono::steady_clock::now();
  const ich::data::PrepareSummary s = ich::data::prepare_dataset(o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "prepare: %d patients, %d slices (%d with hemorrhage, %d left out) -> %s in %.1f s (%.0f "
      "slices/s)\n",
      s.patients, s.slices, s.slices_with_ich, s.slices_skipped, o.out_dir.c_str(), seconds,
      seconds > 0 ? s.slices / seconds : 0.0);
  if (s.nonfinite > 0)
    std::printf("prepare: %lld non-finite voxels replaced (--nonfinite %s; see %s)\n",
                static_cast<long long>(s.nonfinite), scan.nonfinite.c_str(),
                ich::data::kPrepareJson);
  return 0;
}

}  // namespace

ICH_COMMAND("prepare", "windowed PNG slices, masks and a manifest from a CT-ICH dataset",
            run_prepare);
