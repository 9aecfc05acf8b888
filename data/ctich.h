// The CT-ICH dataset layout (PhysioNet "Computed Tomography Images for Intracranial
// Hemorrhage Detection and Segmentation"), which `ichseg synth` also writes:
//   ct_scans/NNN.nii   Hounsfield units (NNN = patient number; .nii.gz also accepted), or
//   ct_scans/NNN/      a folder of DICOM files of the patient's series (data/scan.h), the
//                      mask then being a NIfTI of the series' grid (slices ordered as read)
//   masks/NNN.nii      hemorrhage masks, same shape, binarised here as value > 0
//   hemorrhage_diagnosis_raw_ct.csv
//       PatientNumber,SliceNumber,Intraventricular,Intraparenchymal,Subarachnoid,
//       Epidural,Subdural,No_Hemorrhage,Fracture_Yes_No     (SliceNumber is 1-based)
// Gaps in patient numbers are normal (the public release skips 59-65).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/nifti.h"
#include "data/scan.h"

namespace ich::data {

// The five subtypes in the CSV's column order.
enum Subtype : int {
  kIntraventricular = 0,
  kIntraparenchymal,
  kSubarachnoid,
  kEpidural,
  kSubdural,
  kSubtypeCount
};
const char* subtype_column(int subtype);  // "Intraventricular", as in the CSV header
const char* subtype_abbrev(int subtype);  // "IVH", "IPH", "SAH", "EDH", "SDH"

constexpr const char* kDiagnosisCsv = "hemorrhage_diagnosis_raw_ct.csv";

struct SliceDiagnosis {
  int patient = 0;
  int slice = 0;  // 1-based
  bool subtype[kSubtypeCount] = {false, false, false, false, false};
  bool no_hemorrhage = true;
  bool fracture = false;

  // "IPH+SDH", or "" when there is none.
  std::string subtypes_string() const;
};

struct PatientFiles {
  int patient = 0;
  std::string scan_path;
  std::string mask_path;
  bool scan_is_dicom = false;  // scan_path is a folder of DICOM files
  // Validated; dims equal the mask's. For a DICOM scan: path, nx, ny, nz, spacing and the
  // stored datatype of the series' grid (from its headers).
  NiftiHeader scan_header;
};

struct CtIchDataset {
  std::string root;
  std::string csv_path;
  std::vector<PatientFiles> patients;     // sorted by patient number
  std::vector<SliceDiagnosis> diagnosis;  // sorted by (patient, slice)

  // The CSV row of a slice, or null when the CSV has none for it.
  const SliceDiagnosis* find(int patient, int slice) const;
  int slices_of(int patient) const;  // CSV rows of a patient
};

// Finds and checks everything but the voxel data: the folders, a mask for every scan with the
// scan's dimensions, the CSV's columns, every row naming an existing patient and a slice
// within its scan, no duplicate rows. Throws ich::Error naming the offending file. `scan`
// chooses the series of DICOM scans and the checks they pass (data/scan.h).
CtIchDataset open_ctich(const std::string& root, const ScanOptions& scan = {});

// The CSV alone (columns by name; 0/1 values).
std::vector<SliceDiagnosis> read_diagnosis_csv(const std::string& path);
std::string format_diagnosis_csv(const std::vector<SliceDiagnosis>& rows);

// One patient's scan (HU) and binarised mask (nz, ny, nx), checked to have the same shape.
// The scan is read by read_scan(files.scan_path, scan): non-finite voxels are refused or
// replaced as scan.nonfinite says (scan.volume.nonfinite: how many there were).
struct PatientVolumes {
  Volume scan;
  std::vector<uint8_t> mask;  // 0 or 1, (nz, ny, nx)
  float nonfinite_replaced_with = 0;
  std::string series_uid;  // DICOM scans: the series read
};
PatientVolumes load_patient(const PatientFiles& files, const ScanOptions& scan = {});

// "049" for patient 49 (at least three digits, as the dataset's file names).
std::string patient_name(int patient);

}  // namespace ich::data
