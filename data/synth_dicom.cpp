#include "data/synth_dicom.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "data/ctich.h"
#include "data/dicom_write.h"
#include "data/fileutil.h"
#include "data/geometry.h"
#include "data/nifti.h"
#include "data/rng.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

// A folder removed with everything in it when the scope ends.
struct RemovedAtExit {
  fs::path path;
  ~RemovedAtExit() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

SynthSummary write_synthetic_dicom_dataset(const std::string& out_dir, const SynthOptions& o) {
  // The NIfTI dataset first, in a hidden folder beside out_dir: the DICOM files are written
  // from its volumes, so both formats hold the same voxels by construction.
  const fs::path out = fs::absolute(out_dir).lexically_normal();
  const fs::path parent = out.has_filename() ? out.parent_path() : out.parent_path().parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  const RemovedAtExit nifti{
      parent / ("." + out.filename().string() + ".nifti-" + std::to_string(::getpid()))};
  const SynthSummary summary = write_synthetic_dataset(nifti.path.string(), o);
  const std::string ext = o.gzip ? ".nii.gz" : ".nii";

  StagingDir staging(out_dir, kDiagnosisCsv);
  const fs::path root(staging.path());
  for (const char* sub : {"ct_scans", "masks"}) {
    fs::create_directory(root / sub, ec);
    ICH_CHECK(!ec, "cannot create " << (root / sub).string() << ": " << ec.message());
  }
  for (int p = 1; p <= summary.patients; ++p) {
    const std::string name = patient_name(p);
    const Volume scan = read_nifti((nifti.path / "ct_scans" / (name + ext)).string());
    DicomWriteOptions w;
    w.seed = mix({o.seed, uint64_t(p), 0xd1c0});
    dicom_centred_origin(scan, w.origin);
    w.patient_id = "PHANTOM-" + name;
    w.patient_name = "Phantom^" + name;
    w.series_description = "ichseg synthetic head CT, patient " + name;
    write_dicom_series((root / "ct_scans" / name).string(), scan, w);

    // The series' affine (data/dicom_write.h): axial, voxel (i, j, k) at LPS origin + (i dx,
    // j dy, k dz).
    Affine lps;
    for (int a = 0; a < 3; ++a) {
      lps.m[a][a] = scan.spacing[a];
      lps.m[a][3] = w.origin[a];
    }
    const Volume mask = read_nifti((nifti.path / "masks" / (name + ext)).string());
    std::vector<uint8_t> stored(mask.values.size());
    for (size_t i = 0; i < stored.size(); ++i) stored[i] = mask.values[i] > 0.0f ? 1 : 0;
    NiftiWriteOptions mw;
    mw.has_affine = true;
    mw.affine = lps_to_ras(lps);
    mw.description = "ichseg synthetic hemorrhage mask";
    write_nifti((root / "masks" / (name + ext)).string(), mask.nx, mask.ny, mask.nz, kNiftiUint8,
                stored.data(), mw);
  }
  const std::vector<uint8_t> csv = read_file_bytes((nifti.path / kDiagnosisCsv).string());
  write_file_atomic((root / kDiagnosisCsv).string(), csv.data(), csv.size());
  staging.commit();
  return summary;
}

}  // namespace ich::data
