// ichseg synth --out DIR --patients N --seed S: the synthetic head-CT dataset, written in
// the CT-ICH layout (ct_scans/, masks/, hemorrhage_diagnosis_raw_ct.csv) and nothing else.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "apps/cli_errors.h"
#include "apps/command.h"
#include "data/phantom.h"
#include "data/synth_dicom.h"

namespace {

int run_synth(int argc, char** argv) {
  CLI::App app{"Write a synthetic head-CT dataset in the CT-ICH layout (see docs/DATA.md)",
               "ichseg synth"};
  ich::data::SynthOptions o;
  std::string out;
  app.add_option("--out", out, "output folder (created; an earlier synth output is replaced)")
      ->required();
  app.add_option("--patients", o.patients, "number of patients, numbered 001..")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed; the same seed writes the same bytes")
      ->capture_default_str();
  app.add_option("--size", o.size, "slice width and height in voxels")->capture_default_str();
  app.add_option("--slices", o.slices, "mean slices per patient")->capture_default_str();
  app.add_option("--slice-jitter", o.slice_jitter, "each patient has --slices +- this many")
      ->capture_default_str();
  app.add_option("--healthy-fraction", o.healthy_fraction,
                 "fraction of patients without hemorrhage")
      ->capture_default_str();
  app.add_option("--noise", o.noise_hu, "noise standard deviation in HU")->capture_default_str();
  app.add_flag("--gz", o.gzip, "write .nii.gz instead of .nii");
  std::string format = "nifti";
  app.add_option("--format", format,
                 "nifti, or dicom: ct_scans/NNN/ as DICOM CT series (masks stay NIfTI, with the "
                 "series' geometry)")
      ->check(CLI::IsMember({"nifti", "dicom"}))
      ->capture_default_str();
  std::string difficulty = "easy";
  app.add_option("--difficulty", difficulty,
                 "easy, or hard: small, thin, faint bleeds, partial volume, correlated noise and "
                 "streaks (docs/DATA.md; recorded in synth.json)")
      ->capture_default_str();
  if (const int code = ich::app::parse_command_line(app, argc, argv); code >= 0) return code;
  o.difficulty = ich::data::parse_difficulty(difficulty);
  const auto start = std::chrono::steady_clock::now();
  const ich::data::SynthSummary s = format == "dicom"
                                        ? ich::data::write_synthetic_dicom_dataset(out, o)
                                        : ich::data::write_synthetic_dataset(out, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "synth: %d patients (%d with hemorrhage), %d slices (%d with hemorrhage) -> %s in %.1f s\n",
      s.patients, s.patients_with_ich, s.slices, s.slices_with_ich, out.c_str(), seconds);
  return 0;
}

}  // namespace

ICH_COMMAND("synth", "write a synthetic head-CT dataset in the CT-ICH layout", run_synth);
