// Where voxels are in the patient: the 4x4 voxel-to-patient affine of a volume.
//
// An Affine maps voxel indices (i, j, k, 1) of a Volume (data/nifti.h: x = i fastest, stored
// (nz, ny, nx)) to millimetres in a patient coordinate system:
//   p = A * (i, j, k, 1)^T,  A = [ c0 c1 c2 t ; 0 0 0 1 ]
// column 0 is the step of one voxel along i, column 1 along j, column 2 along k, t is the
// centre of voxel (0, 0, 0).
//
// Two patient systems are in use and differ only in the sign of x and y:
//   LPS  DICOM's: +x towards the patient's Left, +y Posterior, +z Superior (head).
//   RAS  NIfTI's (sform/qform), nibabel's and 3D Slicer's world: +x Right, +y Anterior, +z
//        Superior.
// So RAS = diag(-1, -1, 1, 1) * LPS, exactly as ITK and nibabel convert; lps_to_ras() does it.
#pragma once

#include <array>

namespace ich::data {

struct Affine {
  // Row-major: m[r][c]. The last row stays (0, 0, 0, 1).
  double m[4][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};

  // Patient coordinates of voxel (i, j, k); fractional indices are allowed.
  std::array<double, 3> apply(double i, double j, double k) const {
    std::array<double, 3> p;
    for (int r = 0; r < 3; ++r) p[r] = m[r][0] * i + m[r][1] * j + m[r][2] * k + m[r][3];
    return p;
  }
  // Column c (0..2: the step of one voxel along i, j, k; 3: the origin).
  std::array<double, 3> column(int c) const { return {m[0][c], m[1][c], m[2][c]}; }
};

// A plain scaling: voxel (i, j, k) at (i sx, j sy, k sz). What a NIfTI without orientation
// (and data/nifti.h's writer today) stores.
Affine scaling_affine(const double spacing[3]);

// The same voxels in the other patient system: x and y negated (LPS <-> RAS; its own inverse).
Affine lps_to_ras(const Affine& lps);
inline Affine ras_to_lps(const Affine& ras) {
  return lps_to_ras(ras);
}

// Lengths of columns 0..2: the voxel spacing along i, j, k in mm.
std::array<double, 3> affine_spacing(const Affine& a);

// True when columns 0..2 are orthogonal to each other (|cos| below tolerance), i.e. the
// affine is a rotation (proper or not) times a scaling and a NIfTI qform can hold it; a
// volume read with a gantry tilt allowed has a sheared affine that only the sform can hold.
bool affine_is_orthogonal(const Affine& a, double tolerance = 1e-6);

// Determinant of the 3x3 part: > 0 for a right-handed voxel frame (qfac = 1 in a NIfTI qform).
double affine_determinant(const Affine& a);

}  // namespace ich::data
