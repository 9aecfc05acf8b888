// DICOM series from a folder, as a Volume in HU with its place in the patient.
//
//   DicomFolder f = scan_dicom_folder(dir);               // every file, recursively, any name
//   const DicomSeries& s = select_dicom_series(f, uid);   // "" = the only (CT) series
//   DicomVolume v = read_dicom_series(s, options);        // HU, (nz, ny, nx), affine in LPS
//
// Scanning: every regular file under the folder (names do not matter, as in PACS exports).
// A file that does not claim to be DICOM (data/dicom_parse.h, looks_like_dicom: no DICM
// marker, no data set at byte 0, no .dcm name) is listed in `ignored` with the reason; one
// that claims it but is truncated or damaged is an ich::Error naming it, as is a folder
// without any DICOM file. A DICOMDIR is ignored (it indexes the files, which are scanned
// anyway). Files are grouped by SeriesInstanceUID.
//
// Volume layout, the same as data::Volume from NIfTI (data/nifti.h): voxel (i, j, k) is
// column i, row j of the k-th slice, x = i fastest; slices are ordered by their position
// along the slice normal n = row cosine x column cosine (ImageOrientationPatient), i.e. by
// ImagePositionPatient . n, ascending - never by file name or InstanceNumber. So the voxel
// frame (row cosine, column cosine, n) is right-handed and the LPS affine is
//   column 0 = row cosine    * PixelSpacing[1]   (distance between columns)
//   column 1 = column cosine * PixelSpacing[0]   (distance between rows)
//   column 2 = n * slice step                    (the mean distance between slices)
//   origin   = ImagePositionPatient of slice 0
// A NIfTI written from it needs no flip of any axis: store the voxels as they are, with sform
// = lps_to_ras(affine) (data/geometry.h) and a qform of the same rotation with qfac = 1
// (the determinant is positive by construction); each voxel then maps to the patient
// coordinates the DICOM gives it (RAS = LPS with x and y negated, as ITK and nibabel do).
//
// Checks of a series, each an ich::Error that names it with the numbers, unless allowed:
//   mixed sizes, mixed pixel spacing, mixed orientations, two slices at one position:
//       always refused (no single grid holds them);
//   gantry tilt (slice positions do not run along n):
//       allow_gantry_tilt keeps the voxels and makes affine column 2 the measured step from
//       slice to slice, a sheared affine that places every slice exactly (a NIfTI sform
//       holds it; a qform cannot, it has to be the un-sheared rotation);
//   missing slices (a gap of about 2, 3, ... times the common spacing) and irregular spacing:
//       allow_missing_slices / allow_irregular_spacing keep the slices as they are (nothing
//       is invented or resampled: the voxels are the scanner's) with the mean step
//       (last - first) / (nz - 1), which places the first and last slices exactly and the
//       others within DicomStack::max_position_error_mm, reported in the notes.
// A series of one slice takes its slice step from SpacingBetweenSlices, else SliceThickness,
// else 1 mm, and says so in the notes.
#pragma once

#include <string>
#include <vector>

#include "data/dicom_file.h"
#include "data/geometry.h"
#include "data/nifti.h"

namespace ich::data {

struct DicomIgnoredFile {
  std::string path;
  std::string reason;
};

struct DicomSeries {
  std::string uid;
  std::string description, modality, sop_class;  // of its first file
  long long series_number = 0;
  std::vector<DicomSliceHeader> slices;  // in path order (the volume's order is DicomStack's)
  // "" when every file is a CT slice this reader takes; else the first file's problem, with
  // its name and how many files have one.
  std::string problem;
};

struct DicomFolder {
  std::string root;
  std::vector<DicomSeries> series;  // by SeriesNumber, then UID
  std::vector<DicomIgnoredFile> ignored;
  int dicom_files = 0;
};

DicomFolder scan_dicom_folder(const std::string& dir);

// uid: that series. "": the only series, or when there are several, the only one that is a
// CT series without problem. Otherwise an ich::Error listing every series.
const DicomSeries& select_dicom_series(const DicomFolder& folder, const std::string& uid);

struct DicomReadOptions {
  bool allow_gantry_tilt = false;        // sheared affine, see above
  bool allow_missing_slices = false;     // keep the slices, mean step, see above
  bool allow_irregular_spacing = false;  // keep the slices, mean step, see above
};

// Thresholds of the checks.
constexpr double kDicomDuplicateMm = 0.01;           // two slices nearer than this: one position
constexpr double kDicomSpacingTolerance = 0.01;      // |gap - median| above 1% of the median
constexpr double kDicomTiltPixelFraction = 0.1;      // in-plane drift above 0.1 pixel
constexpr double kDicomOrientationTolerance = 1e-4;  // direction cosines of two slices

// The grid of a series, from its headers alone (no pixel is read).
struct DicomStack {
  std::vector<int> order;  // slice k of the volume = series.slices[order[k]]
  int nx = 0, ny = 0, nz = 0;
  double spacing[3] = {1, 1, 1};     // mm: lengths of affine columns 0, 1, 2
  Affine lps;                        // voxel (i, j, k) -> LPS mm
  double normal[3] = {0, 0, 1};      // row cosine x column cosine
  double median_gap = 0;             // median distance between neighbouring slices along n
  double max_position_error_mm = 0;  // largest |slice position - affine(0, 0, k)|
  // What an allow_* option or a one-slice series did, and slices without a rescale.
  std::vector<std::string> notes;
};

DicomStack dicom_stack(const DicomSeries& series, const DicomReadOptions& options = {});

struct DicomVolume {
  Volume volume;  // HU, (nz, ny, nx); spacing = stack.spacing; datatype: the stored pixels'
  DicomStack stack;
  int64_t nonfinite = 0;           // NaN/Inf voxels (float pixel data only), left as they are
  std::vector<std::string> files;  // file of slice k
};

// Reads every slice of the series (each file parsed and checked again, then decoded).
DicomVolume read_dicom_series(const DicomSeries& series, const DicomReadOptions& options = {});

// One line: UID, description, modality, slices, size, spacing, orientation, and the problem
// or the check that refuses it, for listings (ichseg info).
std::string describe_dicom_series(const DicomSeries& series);
// "axial", "coronal", "sagittal" (normal within 10 degrees of an axis) or "oblique".
std::string dicom_orientation_name(const double normal[3]);

}  // namespace ich::data
