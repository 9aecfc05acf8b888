// dicom_stack (data/dicom.h): the grid of a series from its headers, and the checks that
// refuse a series no single grid holds.
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/dicom.h"

namespace ich::data {

namespace {

double dot3(const double* a, const double* b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

std::string mm(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v << " mm";
  return s.str();
}

// "38 are 512x512, 2 are 256x256 (e.g. FILE)": how many slices have each value of a key,
// the most common first, with a file of the first rarer value.
template <typename Key>
std::string tally(const DicomSeries& s, Key key) {
  std::map<std::string, std::pair<int, std::string>> counts;
  for (const DicomSliceHeader& h : s.slices) {
    auto& c = counts[key(h)];
    if (c.first++ == 0) c.second = h.path;
  }
  std::vector<std::pair<std::string, std::pair<int, std::string>>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::ostringstream m;
  for (size_t i = 0; i < v.size() && i < 4; ++i)
    m << (i ? ", " : "") << v[i].second.first << " " << (v[i].second.first == 1 ? "is" : "are")
      << " " << v[i].first;
  if (v.size() > 4) m << ", ...";
  if (v.size() > 1) m << " (e.g. " << v[1].second.second << ")";
  return m.str();
}

template <typename Key>
bool all_same(const DicomSeries& s, Key same) {
  for (const DicomSliceHeader& h : s.slices)
    if (!same(s.slices[0], h)) return false;
  return true;
}

std::string number(double v, int precision = 6) {
  std::ostringstream s;
  s.precision(precision);
  s << v;
  return s.str();
}

}  // namespace

DicomStack dicom_stack(const DicomSeries& s, const DicomReadOptions& options) {
  const std::string name = "series " + s.uid;
  ICH_CHECK(!s.slices.empty(), name << " has no slice");
  ICH_CHECK(s.problem.empty(), name << ": " << s.problem);
  const int n = static_cast<int>(s.slices.size());

  // ---- what no single grid holds
  if (!all_same(s, [](const DicomSliceHeader& a, const DicomSliceHeader& b) {
        return a.rows == b.rows && a.columns == b.columns;
      }))
    ICH_FAIL(name << " has slices of mixed sizes (columns x rows): "
                  << tally(s, [](const DicomSliceHeader& h) {
                       return std::to_string(h.columns) + "x" + std::to_string(h.rows);
                     }));
  if (!all_same(s, [](const DicomSliceHeader& a, const DicomSliceHeader& b) {
        return std::fabs(a.pixel_spacing[0] - b.pixel_spacing[0]) <= 1e-4 * a.pixel_spacing[0] &&
               std::fabs(a.pixel_spacing[1] - b.pixel_spacing[1]) <= 1e-4 * a.pixel_spacing[1];
      }))
    ICH_FAIL(name << " has slices of mixed pixel spacing (rows\\columns, mm): "
                  << tally(s, [](const DicomSliceHeader& h) {
                       return number(h.pixel_spacing[0], 10) + "\\" +
                              number(h.pixel_spacing[1], 10);
                     }));
  if (!all_same(s, [](const DicomSliceHeader& a, const DicomSliceHeader& b) {
        for (int i = 0; i < 6; ++i)
          if (std::fabs(a.orientation[i] - b.orientation[i]) > kDicomOrientationTolerance)
            return false;
        return true;
      })) {
    bool localizer = false;
    for (const DicomSliceHeader& h : s.slices)
      localizer = localizer || h.image_type.find("LOCALIZER") != std::string::npos;
    ICH_FAIL(name << " has slices of mixed orientations (ImageOrientationPatient): "
                  << tally(s,
                           [](const DicomSliceHeader& h) {
                             std::string o;
                             for (int i = 0; i < 6; ++i)
                               o += (i ? "\\" : "") + number(h.orientation[i], 4);
                             return o;
                           })
                  << (localizer ? "; it holds a localizer (scout) image" : ""));
  }

  DicomStack st;
  st.nx = s.slices[0].columns;
  st.ny = s.slices[0].rows;
  st.nz = n;
  const double* row = s.slices[0].orientation;
  const double* col = s.slices[0].orientation + 3;
  double* nrm = st.normal;
  nrm[0] = row[1] * col[2] - row[2] * col[1];
  nrm[1] = row[2] * col[0] - row[0] * col[2];
  nrm[2] = row[0] * col[1] - row[1] * col[0];
  const double nn = std::sqrt(dot3(nrm, nrm));
  for (int i = 0; i < 3; ++i) nrm[i] /= nn;

  // ---- order along the normal
  std::vector<double> along(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) along[size_t(k)] = dot3(s.slices[size_t(k)].position, nrm);
  st.order.resize(size_t(n));
  for (int k = 0; k < n; ++k) st.order[size_t(k)] = k;
  std::stable_sort(st.order.begin(), st.order.end(),
                   [&](int a, int b) { return along[size_t(a)] < along[size_t(b)]; });
  auto slice = [&](int k) -> const DicomSliceHeader& {
    return s.slices[size_t(st.order[size_t(k)])];
  };
  auto pos = [&](int k) { return along[size_t(st.order[size_t(k)])]; };

  std::vector<double> gaps;
  int duplicates = 0;
  int first_duplicate = -1;
  for (int k = 0; k + 1 < n; ++k) {
    gaps.push_back(pos(k + 1) - pos(k));
    if (gaps.back() < kDicomDuplicateMm) {
      if (duplicates++ == 0) first_duplicate = k;
    }
  }
  if (duplicates) {
    const DicomSliceHeader& a = slice(first_duplicate);
    const DicomSliceHeader& b = slice(first_duplicate + 1);
    ICH_FAIL(name << " has " << duplicates << (duplicates == 1 ? " pair" : " pairs")
                  << " of slices at one position (e.g. " << a.path << " and " << b.path << " at "
                  << mm(pos(first_duplicate)) << " along the normal"
                  << (a.sop_instance == b.sop_instance ? ", the same SOPInstanceUID: one file twice"
                                                       : ": two acquisitions in one series?")
                  << ")");
  }

  const double col_spacing = s.slices[0].pixel_spacing[1];
  const double row_spacing = s.slices[0].pixel_spacing[0];
  double step[3] = {nrm[0], nrm[1], nrm[2]};  // affine column 2
  if (n == 1) {
    const DicomSliceHeader& h = s.slices[0];
    const double dz = h.spacing_between_slices > 0 ? h.spacing_between_slices
                      : h.slice_thickness > 0      ? h.slice_thickness
                                                   : 1.0;
    st.notes.push_back("one slice: slice spacing " + mm(dz) + " from " +
                       (h.spacing_between_slices > 0 ? "SpacingBetweenSlices"
                        : h.slice_thickness > 0
                            ? "SliceThickness"
                            : "neither SpacingBetweenSlices nor SliceThickness (1 mm)"));
    for (double& v : step) v *= dz;
    st.median_gap = 0;
  } else {
    std::vector<double> sorted = gaps;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    st.median_gap = median;

    // ---- gantry tilt: positions drift in-plane, off the line along the normal
    const double* p0 = slice(0).position;
    double drift = 0;
    for (int k = 1; k < n; ++k) {
      double d[3];
      const double* pk = slice(k).position;
      for (int i = 0; i < 3; ++i) d[i] = pk[i] - p0[i];
      const double a = dot3(d, nrm);
      double perp2 = 0;
      for (int i = 0; i < 3; ++i) perp2 += (d[i] - a * nrm[i]) * (d[i] - a * nrm[i]);
      drift = std::max(drift, std::sqrt(perp2));
    }
    const double* pl = slice(n - 1).position;
    double mean_step[3];
    for (int i = 0; i < 3; ++i) mean_step[i] = (pl[i] - p0[i]) / (n - 1);
    const double tilt_tolerance =
        std::max(0.01, kDicomTiltPixelFraction * std::min(row_spacing, col_spacing));
    const bool tilted = drift > tilt_tolerance;
    if (tilted) {
      const double a = dot3(mean_step, nrm);
      const double len = std::sqrt(dot3(mean_step, mean_step));
      const double degrees = std::acos(std::min(1.0, std::fabs(a) / len)) * 180.0 / M_PI;
      std::ostringstream m;
      m << "gantry tilt: its slice positions run at " << number(degrees, 3)
        << " degrees to the slice normal (in-plane shift " << mm(drift) << " over " << n
        << " slices";
      if (slice(0).gantry_tilt != 0)
        m << "; GantryDetectorTilt (0018,1120) says " << number(slice(0).gantry_tilt, 4);
      m << ")";
      if (!options.allow_gantry_tilt) ICH_FAIL(name << " has a " << m.str());
      st.notes.push_back(m.str() +
                         ": allowed, the affine is sheared so that each slice is where the "
                         "scanner put it");
      for (int i = 0; i < 3; ++i) step[i] = mean_step[i];
    }

    // ---- missing slices and irregular spacing
    const double tolerance = kDicomSpacingTolerance * median;
    int missing_gaps = 0, missing_slices = 0, irregular = 0;
    std::string first_missing, first_irregular;
    double lo = median, hi = median;
    for (int k = 0; k + 1 < n; ++k) {
      const double g = gaps[size_t(k)];
      if (std::fabs(g - median) <= tolerance) continue;
      const double ratio = g / median;
      const double whole = std::round(ratio);
      const std::string where = mm(g) + " between " + slice(k).path + " and " + slice(k + 1).path;
      if (ratio > 1.5 && std::fabs(ratio - whole) < 0.25) {
        if (missing_gaps++ == 0) first_missing = where;
        missing_slices += static_cast<int>(whole) - 1;
      } else {
        if (irregular++ == 0) first_irregular = where;
        lo = std::min(lo, g);
        hi = std::max(hi, g);
      }
    }
    if (missing_gaps) {
      std::ostringstream m;
      m << "missing slices: " << missing_gaps << (missing_gaps == 1 ? " gap" : " gaps")
        << " of a whole multiple of the spacing " << mm(median) << " (about " << missing_slices
        << (missing_slices == 1 ? " slice" : " slices") << " missing; e.g. " << first_missing
        << ")";
      if (!options.allow_missing_slices) ICH_FAIL(name << " has " << m.str());
      st.notes.push_back(m.str() + ": allowed, slices kept as they are with the mean step");
    }
    if (irregular) {
      std::ostringstream m;
      m << "irregular spacing: " << irregular << " of " << n - 1
        << " distances between slices differ from the median " << mm(median) << " by more than "
        << number(100 * kDicomSpacingTolerance) << "% (from " << mm(lo) << " to " << mm(hi)
        << "; e.g. " << first_irregular << ")";
      if (!options.allow_irregular_spacing) ICH_FAIL(name << " has " << m.str());
      st.notes.push_back(m.str() + ": allowed, slices kept as they are with the mean step");
    }
    if (!tilted) {
      const double a = (pos(n - 1) - pos(0)) / (n - 1);
      for (double& v : step) v *= a;
    }
  }

  // ---- the affine
  const double* origin = slice(0).position;
  for (int r = 0; r < 3; ++r) {
    st.lps.m[r][0] = row[r] * col_spacing;
    st.lps.m[r][1] = col[r] * row_spacing;
    st.lps.m[r][2] = step[r];
    st.lps.m[r][3] = origin[r];
  }
  const std::array<double, 3> sp = affine_spacing(st.lps);
  for (int i = 0; i < 3; ++i) st.spacing[i] = sp[size_t(i)];
  for (int k = 0; k < n; ++k) {
    const std::array<double, 3> a = st.lps.apply(0, 0, k);
    const double* p = slice(k).position;
    double e2 = 0;
    for (int i = 0; i < 3; ++i) e2 += (a[size_t(i)] - p[i]) * (a[size_t(i)] - p[i]);
    st.max_position_error_mm = std::max(st.max_position_error_mm, std::sqrt(e2));
  }
  if (!st.notes.empty() && n > 1)
    st.notes.push_back("slices are at most " + mm(st.max_position_error_mm) +
                       " from where the affine places them");
  int without_rescale = 0;
  for (const DicomSliceHeader& h : s.slices) without_rescale += h.has_rescale ? 0 : 1;
  if (without_rescale)
    st.notes.push_back(std::to_string(without_rescale) + " of " + std::to_string(n) +
                       " slices have neither RescaleSlope nor RescaleIntercept: their stored "
                       "values are taken as HU");
  return st;
}

}  // namespace ich::data
