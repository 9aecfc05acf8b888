// NIfTI-1 and NIfTI-2 volumes (.nii and .nii.gz) through nifti_clib.
//
// Reading checks the header itself first (size field, magic, datatype, dimensions, and
// that the file can hold the data it announces) so that a damaged or hostile file gives
// one clear ich::Error naming it, never a giant allocation or a crash inside the library.
// Only then does nifti_clib decode the voxels (byte order, every datatype).
//
// Layout of Volume::values: (nz, ny, nx), x fastest, exactly the NIfTI storage order.
// Slice k is an image of ny rows by nx columns: pixel (row j, col i) = voxel (i, j, k).
// The values are the scaled ones, stored * scl_slope + scl_inter (no scaling when the
// slope is 0 or not finite, as nibabel).
//
// Non-finite voxels (NaN, +-Inf in float32/float64 files) are kept as they are and counted in
// Volume::nonfinite; nothing here replaces them (nifti_clib's own loader turns them into 0
// silently, so float voxels are read past it). What to do with them is the caller's choice
// (data/scan.h: refuse, or replace by 0 or by the finite minimum).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/geometry.h"

namespace ich::data {

// NIfTI datatype codes (nifti1.h) of the voxel types read and written.
enum NiftiDatatype : int {
  kNiftiUint8 = 2,
  kNiftiInt16 = 4,
  kNiftiInt32 = 8,
  kNiftiFloat32 = 16,
  kNiftiFloat64 = 64,
  kNiftiInt8 = 256,
  kNiftiUint16 = 512,
  kNiftiUint32 = 768,
  kNiftiInt64 = 1024,
  kNiftiUint64 = 1280,
};

// "uint8", "int16", ... ; "" for a code this reader does not support.
const char* nifti_datatype_name(int datatype);
int nifti_datatype_bytes(int datatype);  // 0 when unsupported

// The largest volume accepted, in voxels. A head CT is 512x512x~40 (10M voxels); the limit
// keeps every index in int and bounds what a header can make the reader allocate.
constexpr int64_t kMaxVolumeVoxels = int64_t(1) << 30;

struct NiftiHeader {
  std::string path;
  int version = 1;  // 1 or 2
  bool gzipped = false;
  bool byte_swapped = false;
  int datatype = 0;
  int64_t nx = 1, ny = 1, nz = 1;
  double spacing[3] = {1.0, 1.0, 1.0};  // mm (pixdim 1..3)
  double scl_slope = 1.0;               // effective: 1 and 0 when the file has no scaling
  double scl_inter = 0.0;
  int64_t vox_offset = 0;
  int64_t data_bytes = 0;
};

struct Volume {
  int nx = 0, ny = 0, nz = 0;
  double spacing[3] = {1.0, 1.0, 1.0};
  int datatype = 0;           // of the file it came from
  std::vector<float> values;  // (nz, ny, nx)
  int64_t nonfinite = 0;      // NaN/Inf among values, counted when read

  int64_t voxels() const { return int64_t(nx) * ny * nz; }
  const float* slice(int k) const { return values.data() + int64_t(k) * nx * ny; }
  float at(int i, int j, int k) const { return values[(int64_t(k) * ny + j) * nx + i]; }
};

// Header only, validated as described above; throws ich::Error naming the file.
NiftiHeader read_nifti_header(const std::string& path);
// Header and voxels, scaled, as float. The volume must be at most 3-D (dims 4..7 equal 1).
Volume read_nifti(const std::string& path);

struct NiftiWriteOptions {
  int version = 1;  // 1 or 2; .nii.gz in the path means gzip
  double spacing[3] = {1.0, 1.0, 1.0};
  double scl_slope = 1.0;  // written as given; readers compute stored * slope + inter
  double scl_inter = 0.0;
  std::string description;  // descrip field, at most 79 characters kept
  // Where the voxels are: without an affine, an sform that is a plain scaling by spacing (no
  // orientation). With one (voxel -> RAS mm, e.g. lps_to_ras of a DICOM series' affine), the
  // sform is that affine, pixdim its column lengths, and the qform the same rotation (qfac
  // from the determinant's sign) when the columns are orthogonal; a sheared affine (a gantry
  // tilt kept) can only be an sform, and the qform is left unset (code 0).
  bool has_affine = false;
  Affine affine;
};

// Writes stored values (nx*ny*nz of the given datatype, x fastest) atomically: a temporary
// file in the same folder, renamed when complete.
void write_nifti(const std::string& path, int64_t nx, int64_t ny, int64_t nz, int datatype,
                 const void* stored, const NiftiWriteOptions& options = {});

// Writes stored values of `datatype` shaped like the 3-D volume in `reference` (nx*ny*nz, x
// fastest) with the reference's header: dimensions, spacing, units, qform and sform are kept
// (so a mask overlays its scan in any viewer); the scaling is reset to none. NIfTI version and
// compression follow the reference and the path's .gz. Written atomically.
void write_nifti_like(const std::string& path, const std::string& reference, int datatype,
                      const void* stored);

}  // namespace ich::data
