// A float HU volume written as one DICOM CT series, the way scanners and PACS export them,
// so that the DICOM reader is exercised (and demonstrated) without any download.
//
// One single-frame CT Image Storage file per slice, explicit VR little endian, int16 pixels
// (PixelRepresentation 1, 16 bits stored) with RescaleSlope 1 and RescaleIntercept -1024:
// stored = HU + 1024. Axial, head first supine: ImageOrientationPatient 1\0\0\0\1\0, so
// voxel (i, j, k) of the volume (data/nifti.h layout) is at LPS
//   origin + (i * spacing[0], j * spacing[1], k * spacing[2])
// which is the affine read_dicom_series gives back (data/dicom.h). PixelSpacing is written
// rows-first as the standard has it (spacing[1]\spacing[0]); SliceThickness = spacing[2].
//
// Unlike a plain export, and on purpose: the file names are a seeded shuffle of the slice
// numbers (no extension), and InstanceNumber 1 is the top slice (slices listed in descending
// z), so a reader that orders by name or InstanceNumber gets the volume upside down.
//
// Deterministic: every UID ("2.25." + a 128-bit number, the UUID-derived form of PS3.5 B.2,
// here drawn from the seed instead of at random) and the names come from `seed`; the same
// volume and seed give byte-identical files. Each file is written to a temporary name and
// renamed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/nifti.h"

namespace ich::data {

struct DicomWriteOptions {
  uint64_t seed = 0;
  double origin[3] = {0, 0, 0};  // LPS mm of voxel (0, 0, 0)
  std::string patient_id = "PHANTOM";
  std::string patient_name = "Phantom^Head";
  std::string series_description = "synthetic head CT";
  int series_number = 1;
};

// The origin that centres the slices on the scanner's axis: (-(nx-1)/2 dx, -(ny-1)/2 dy, 0).
void dicom_centred_origin(const Volume& volume, double origin[3]);

struct DicomWriteResult {
  std::string study_uid, series_uid;
  std::vector<std::string> files;  // the file of slice k (paths under dir)
};

// Writes volume.values (HU; each must be an integer in [-33792, 31743], what int16 with the
// intercept holds) with volume.spacing into dir (created if missing). Files of the same names
// are replaced. Throws ich::Error for a value it cannot store or a file it cannot write.
DicomWriteResult write_dicom_series(const std::string& dir, const Volume& volume,
                                    const DicomWriteOptions& options);

}  // namespace ich::data
