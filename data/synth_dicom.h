// `ichseg synth --format dicom`: the synthetic CT-ICH dataset with every scan a DICOM CT series,
// so that the demo, the tests and the benchmark read DICOM without any download.
//
//   ct_scans/NNN/        one series per patient (data/dicom_write.h: one file per slice,
//                        shuffled file names without extension, InstanceNumber 1 the top
//                        slice, int16 stored with RescaleIntercept -1024), slices centred on
//                        the scanner axis (dicom_centred_origin), each patient its own UIDs
//   masks/NNN.nii        the mask of the NIfTI dataset, with an sform and qform equal to the
//                        series' voxel -> RAS affine, so it overlays on the series
//   hemorrhage_diagnosis_raw_ct.csv   as the NIfTI dataset's
// The voxels (HU) are exactly those write_synthetic_dataset writes for the same options, and
// read back (data/scan.h) in the same order. Written next to out_dir and moved into place
// when complete.
#pragma once

#include <string>

#include "data/phantom.h"

namespace ich::data {

SynthSummary write_synthetic_dicom_dataset(const std::string& out_dir, const SynthOptions& options);

}  // namespace ich::data
