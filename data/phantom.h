// The synthetic head CT: a seeded phantom written in the CT-ICH layout (`ichseg synth`).
//
// Each patient is an axial stack through an ellipsoidal head, from near the skull base to
// near the vertex. Per slice, from outside in: air (about -1000 HU), scalp (soft tissue),
// skull (HU 700-1500: bright cortical tables around a darker diploe), a thin CSF space, then
// brain parenchyma with grey/white contrast (cortex 35-42 HU with gyri, white matter 25-31,
// deep grey nuclei), sulci and the interhemispheric fissure (CSF), lateral and third
// ventricles (CSF, 0-15 HU). Hemorrhages (50-90 HU) of the five CT-ICH subtypes with their
// typical shapes and places:
//   epidural       biconvex lens against the inner table, short in extent, often with a fracture
//   subdural       thin crescent along the inner table, long in extent
//   intraparenchymal  irregular blob inside the brain
//   intraventricular  blood layering in the dependent (posterior) part of a lateral ventricle
//   subarachnoid   blood filling the sulci (and fissure) over a sector of the brain
// then Gaussian noise. Each tissue's values are clamped to its range so the ranges above
// hold voxel by voxel. The masks are exact: 1 where a hemorrhage was drawn, and the CSV
// flags each slice with the subtypes whose voxels it holds.
//
// Patient p (1-based) is healthy when floor(p * f) > floor((p - 1) * f) for the healthy
// fraction f (so f = 0.25 makes patients 4, 8, 12, ... healthy); the others have one to
// three hemorrhages, the first of subtype (i mod 5) for the i-th patient with hemorrhage
// (0-based), so that any five consecutive ones show all five subtypes. Everything about patient p
// comes from generators keyed by (seed, p), so a patient does not change when the number of
// patients does.
//
// Difficulty hard (`--difficulty hard`; the easy phantom above is unchanged by it): smaller
// and thinner bleeds (subdural crescents of 1-3 % of the head's radius, subarachnoid blood
// in a few sulci, small intraparenchymal blobs), over fewer slices (about one slice in ten
// holds blood, as in CT-ICH); blood only 10-20 HU over grey matter; partial volume: every
// voxel is the mean of 3 x 3 in-plane x 3 through-plane samples of the model (the mask is 1
// where at least half of them are blood), so edges blur and a thin bleed fades into its
// neighbours over a 5 mm slice; spatially correlated noise (white noise smoothed by a 3x3
// binomial kernel, rescaled to --noise HU) and streaks (thin lines of +-8..30 HU through
// the head, more and stronger near the skull base, as beam hardening and motion make
// them; --noise 0 turns both off). No tissue clamp: noise and partial volume leave the ranges of the table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/ctich.h"

namespace ich::data {

enum class Difficulty { easy, hard };
const char* difficulty_name(Difficulty d);
// "easy" or "hard"; anything else throws ich::Error naming the choices.
Difficulty parse_difficulty(const std::string& name);

struct SynthOptions {
  int patients = 4;
  int size = 512;        // nx = ny
  int slices = 30;       // mean slices per patient
  int slice_jitter = 3;  // each patient has slices +- this many (at least 1 slice)
  uint64_t seed = 0;
  double healthy_fraction = 0.25;
  double noise_hu = 4.0;  // standard deviation of the Gaussian noise
  bool gzip = false;      // write .nii.gz instead of .nii
  Difficulty difficulty = Difficulty::easy;
};

// The file a hard dataset records its settings in (JSON: difficulty, seed, patients, size,
// slices, noise); an easy dataset has none, so its bytes are those of earlier versions.
constexpr const char* kSynthMetadataJson = "synth.json";

enum Tissue : uint8_t {
  kTissueAir = 0,
  kTissueScalp,
  kTissueSkull,
  kTissueCsf,     // the space between skull and brain
  kTissueSulcus,  // sulci and the interhemispheric fissure (CSF)
  kTissueGrey,    // cortex
  kTissueWhite,
  kTissueDeepGrey,   // basal ganglia / thalami
  kTissueVentricle,  // CSF
  kTissueBlood,      // a hemorrhage (mask = 1)
  kTissueFracture,   // a gap through the skull (soft tissue)
  kTissueCount
};
const char* tissue_name(int tissue);
// The HU range each tissue is clamped to.
void tissue_hu_range(int tissue, float* lo, float* hi);

struct PhantomPatient {
  int patient = 0;
  int nx = 0, ny = 0, nz = 0;
  double spacing[3] = {1, 1, 1};          // mm
  std::vector<int16_t> hu;                // (nz, ny, nx)
  std::vector<uint8_t> mask;              // (nz, ny, nx), 0/1
  std::vector<uint8_t> tissue;            // (nz, ny, nx), Tissue
  std::vector<SliceDiagnosis> diagnosis;  // one per slice, slice = k + 1
};

PhantomPatient make_phantom_patient(const SynthOptions& options, int patient);

struct SynthSummary {
  int patients = 0;
  int patients_with_ich = 0;
  int slices = 0;
  int slices_with_ich = 0;
};

// Writes ct_scans/NNN.nii (int16 HU), masks/NNN.nii (uint8 0/1) for patients 1..N and the
// diagnosis CSV into out_dir (and synth.json when not easy), and nothing else. The folder is built next to out_dir and
// moved into place when complete: a failure leaves no partial output.
SynthSummary write_synthetic_dataset(const std::string& out_dir, const SynthOptions& options);

}  // namespace ich::data
