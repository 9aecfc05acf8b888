// scan_dicom_folder, select_dicom_series, describe_dicom_series (data/dicom.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/dicom.h"
#include "data/fileutil.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

constexpr uint32_t kDirectoryRecordSequence = dicom_tag(0x0004, 0x1220);

// The first bytes of a file, enough for looks_like_dicom.
std::vector<uint8_t> file_head(const std::string& path) {
  std::vector<uint8_t> head(132);
  FILE* f = std::fopen(path.c_str(), "rb");
  ICH_CHECK(f != nullptr, "cannot read " << path);
  head.resize(std::fread(head.data(), 1, head.size(), f));
  std::fclose(f);
  return head;
}

std::string series_list(const DicomFolder& folder) {
  std::string out;
  for (const DicomSeries& s : folder.series) out += "\n  " + describe_dicom_series(s);
  return out;
}

}  // namespace

DicomFolder scan_dicom_folder(const std::string& dir) {
  std::error_code ec;
  ICH_CHECK(fs::is_directory(dir, ec), dir << " is not a folder");
  std::vector<std::string> paths;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) paths.push_back(it->path().string());
  }
  ICH_CHECK(!ec, "cannot list " << dir << ": " << ec.message());
  std::sort(paths.begin(), paths.end());

  DicomFolder folder;
  folder.root = dir;
  std::map<std::string, DicomSeries> by_uid;
  for (const std::string& path : paths) {
    const std::vector<uint8_t> head = file_head(path);
    std::string why;
    if (!looks_like_dicom(path, head.data(), head.size(), &why)) {
      folder.ignored.push_back({path, "not DICOM: " + why});
      continue;
    }
    const DicomParsed parsed(path, read_file_bytes(path));
    if (parsed.find(kDirectoryRecordSequence)) {
      folder.ignored.push_back({path, "a DICOMDIR (an index of the files, which are scanned)"});
      continue;
    }
    DicomSliceHeader h = dicom_slice_header(parsed);
    ICH_CHECK(!h.series_uid.empty(), path << " has no SeriesInstanceUID (0020,000E)");
    ++folder.dicom_files;
    DicomSeries& s = by_uid[h.series_uid];
    if (s.slices.empty()) {
      s.uid = h.series_uid;
      s.description = h.series_description;
      s.modality = h.modality;
      s.sop_class = h.sop_class;
      s.series_number = h.series_number;
    }
    s.slices.push_back(std::move(h));
  }
  if (by_uid.empty()) {
    std::ostringstream m;
    m << dir << " holds no DICOM file (" << paths.size() << " files";
    for (size_t i = 0; i < folder.ignored.size() && i < 3; ++i)
      m << (i ? "; " : ": ") << folder.ignored[i].path << " " << folder.ignored[i].reason;
    if (folder.ignored.size() > 3) m << "; ...";
    m << ")";
    ICH_FAIL(m.str());
  }
  for (auto& [uid, s] : by_uid) {
    int with_problem = 0;
    const DicomSliceHeader* first = nullptr;
    for (const DicomSliceHeader& h : s.slices) {
      if (h.problem.empty()) continue;
      ++with_problem;
      if (!first) first = &h;
    }
    if (first) {
      s.problem = first->path + " " + first->problem;
      if (with_problem > 1)
        s.problem += " (and " + std::to_string(with_problem - 1) + " more of its " +
                     std::to_string(s.slices.size()) + " files)";
    }
    folder.series.push_back(std::move(s));
  }
  std::stable_sort(folder.series.begin(), folder.series.end(),
                   [](const DicomSeries& a, const DicomSeries& b) {
                     return a.series_number != b.series_number ? a.series_number < b.series_number
                                                               : a.uid < b.uid;
                   });
  return folder;
}

const DicomSeries& select_dicom_series(const DicomFolder& folder, const std::string& uid) {
  if (!uid.empty()) {
    for (const DicomSeries& s : folder.series)
      if (s.uid == uid) return s;
    ICH_FAIL(folder.root << " has no series " << uid << "; it holds:" << series_list(folder));
  }
  if (folder.series.size() == 1) return folder.series[0];
  const DicomSeries* only = nullptr;
  int readable = 0;
  for (const DicomSeries& s : folder.series) {
    if (s.problem.empty() && s.modality == "CT") {
      ++readable;
      only = &s;
    }
  }
  if (readable == 1) return *only;
  ICH_FAIL(folder.root << " holds " << folder.series.size() << " series"
                       << (readable ? "" : ", none of them a CT series this reader can read")
                       << "; choose one by its SeriesInstanceUID:" << series_list(folder));
}

std::string dicom_orientation_name(const double normal[3]) {
  static const char* const kNames[] = {"sagittal", "coronal", "axial"};
  const double cos10 = std::cos(10.0 * M_PI / 180.0);
  for (int a = 0; a < 3; ++a)
    if (std::fabs(normal[a]) >= cos10) return kNames[a];
  return "oblique";
}

std::string describe_dicom_series(const DicomSeries& s) {
  std::ostringstream m;
  m << s.uid << "  \"" << s.description << "\"  " << (s.modality.empty() ? "-" : s.modality) << "  "
    << s.slices.size() << (s.slices.size() == 1 ? " file" : " files");
  if (!s.problem.empty()) {
    m << "  not readable: " << s.problem;
    return m.str();
  }
  // The measured grid, with every allow_* on so that the figures show; what would be
  // refused is said after them.
  DicomReadOptions all;
  all.allow_gantry_tilt = all.allow_missing_slices = all.allow_irregular_spacing = true;
  try {
    const DicomStack st = dicom_stack(s, all);
    const double* o = s.slices[size_t(st.order[0])].orientation;
    m << "  " << st.nx << "x" << st.ny << "x" << st.nz << "  spacing " << st.spacing[0] << "x"
      << st.spacing[1] << "x" << st.spacing[2] << " mm  " << dicom_orientation_name(st.normal)
      << " (" << o[0] << "\\" << o[1] << "\\" << o[2] << "\\" << o[3] << "\\" << o[4] << "\\"
      << o[5] << ")";
    try {
      dicom_stack(s, DicomReadOptions{});
    } catch (const Error& e) {
      m << "  refused: " << error_message(e);
    }
  } catch (const Error& e) {
    m << "  refused: " << error_message(e);
  }
  return m.str();
}

}  // namespace ich::data
