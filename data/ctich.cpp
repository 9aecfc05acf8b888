#include "data/ctich.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/csv.h"
#include "data/fileutil.h"

namespace fs = std::filesystem;

namespace ich::data {

namespace {

const char* const kColumns[kSubtypeCount] = {"Intraventricular", "Intraparenchymal", "Subarachnoid",
                                             "Epidural", "Subdural"};
const char* const kAbbrevs[kSubtypeCount] = {"IVH", "IPH", "SAH", "EDH", "SDH"};

// "049.nii" or "049.nii.gz" (or, for a folder, "049") -> 49; -1 for anything else.
int patient_number_of(const std::string& name, bool folder) {
  size_t digits = 0;
  while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits]))) ++digits;
  if (digits == 0 || digits > 6) return -1;
  const std::string rest = name.substr(digits);
  if (folder ? !rest.empty() : (rest != ".nii" && rest != ".nii.gz")) return -1;
  return std::stoi(name.substr(0, digits));
}

// Volume files of a folder by patient number (and, with folders, sub-folders NNN/ of DICOM
// files); two entries for one patient is an error.
std::map<int, std::string> volumes_in(const std::string& dir, bool folders) {
  std::vector<std::pair<std::string, bool>> entries;
  for (const std::string& name : list_files(dir)) entries.emplace_back(name, false);
  if (folders) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory(ec)) entries.emplace_back(e.path().filename().string(), true);
    std::sort(entries.begin(), entries.end());
  }
  std::map<int, std::string> found;
  for (const auto& [name, folder] : entries) {
    const int patient = patient_number_of(name, folder);
    if (patient < 0) continue;
    const std::string path = (fs::path(dir) / name).string();
    auto [it, inserted] = found.emplace(patient, path);
    ICH_CHECK(inserted,
              "patient " << patient << " has two scans: " << it->second << " and " << path);
  }
  return found;
}

// The header of a DICOM scan folder's series, as the NiftiHeader fields open_ctich checks.
NiftiHeader dicom_scan_header(const std::string& path, const ScanOptions& o) {
  const DicomFolder folder = scan_dicom_folder(path);
  const DicomSeries& series = choose_series(folder, o);
  const DicomStack st = dicom_stack(series, o.dicom);
  NiftiHeader h;
  h.path = path;
  h.nx = st.nx;
  h.ny = st.ny;
  h.nz = st.nz;
  for (int i = 0; i < 3; ++i) h.spacing[i] = st.spacing[i];
  h.datatype = kNiftiInt16;
  return h;
}

bool flag(const CsvTable& t, size_t row, int column) {
  const long long v = csv_int(t, row, column);
  ICH_CHECK(v == 0 || v == 1, t.path << " line " << t.row_lines[row] << ": column '"
                                     << t.header[column] << "' holds " << v << ", expected 0 or 1");
  return v == 1;
}

std::string dims_string(const NiftiHeader& h) {
  std::ostringstream os;
  os << h.nx << "x" << h.ny << "x" << h.nz;
  return os.str();
}

}  // namespace

const char* subtype_column(int subtype) {
  return kColumns[subtype];
}
const char* subtype_abbrev(int subtype) {
  return kAbbrevs[subtype];
}

std::string patient_name(int patient) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%03d", patient);
  return buf;
}

std::string SliceDiagnosis::subtypes_string() const {
  std::string out;
  for (int s = 0; s < kSubtypeCount; ++s) {
    if (subtype[s]) out += (out.empty() ? "" : "+") + std::string(kAbbrevs[s]);
  }
  return out;
}

const SliceDiagnosis* CtIchDataset::find(int patient, int slice) const {
  auto it = std::lower_bound(diagnosis.begin(), diagnosis.end(), std::make_pair(patient, slice),
                             [](const SliceDiagnosis& d, const std::pair<int, int>& key) {
                               return std::make_pair(d.patient, d.slice) < key;
                             });
  if (it == diagnosis.end() || it->patient != patient || it->slice != slice) return nullptr;
  return &*it;
}

int CtIchDataset::slices_of(int patient) const {
  return static_cast<int>(
      std::count_if(diagnosis.begin(), diagnosis.end(),
                    [&](const SliceDiagnosis& d) { return d.patient == patient; }));
}

std::vector<SliceDiagnosis> read_diagnosis_csv(const std::string& path) {
  const CsvTable t = read_csv(path);
  const int patient_col = t.column("PatientNumber");
  const int slice_col = t.column("SliceNumber");
  int subtype_cols[kSubtypeCount];
  for (int s = 0; s < kSubtypeCount; ++s) subtype_cols[s] = t.column(kColumns[s]);
  const int none_col = t.column("No_Hemorrhage");
  const int fracture_col = t.column("Fracture_Yes_No");

  std::vector<SliceDiagnosis> rows;
  rows.reserve(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    SliceDiagnosis d;
    const long long patient = csv_int(t, r, patient_col);
    const long long slice = csv_int(t, r, slice_col);
    ICH_CHECK(patient >= 0 && patient < 1000000, path << " line " << t.row_lines[r]
                                                      << ": PatientNumber " << patient
                                                      << " is out of range");
    ICH_CHECK(slice >= 1 && slice <= 1000000,
              path << " line " << t.row_lines[r] << ": SliceNumber " << slice
                   << " is out of range (slices are numbered from 1)");
    d.patient = static_cast<int>(patient);
    d.slice = static_cast<int>(slice);
    for (int s = 0; s < kSubtypeCount; ++s) d.subtype[s] = flag(t, r, subtype_cols[s]);
    d.no_hemorrhage = flag(t, r, none_col);
    d.fracture = flag(t, r, fracture_col);
    rows.push_back(d);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const SliceDiagnosis& a, const SliceDiagnosis& b) {
    return std::make_pair(a.patient, a.slice) < std::make_pair(b.patient, b.slice);
  });
  for (size_t i = 1; i < rows.size(); ++i) {
    ICH_CHECK(
        rows[i].patient != rows[i - 1].patient || rows[i].slice != rows[i - 1].slice,
        path << " lists patient " << rows[i].patient << " slice " << rows[i].slice << " twice");
  }
  return rows;
}

std::string format_diagnosis_csv(const std::vector<SliceDiagnosis>& rows) {
  std::ostringstream os;
  os << "PatientNumber,SliceNumber";
  for (const char* c : kColumns) os << "," << c;
  os << ",No_Hemorrhage,Fracture_Yes_No\n";
  for (const SliceDiagnosis& d : rows) {
    os << d.patient << "," << d.slice;
    for (bool s : d.subtype) os << "," << (s ? 1 : 0);
    os << "," << (d.no_hemorrhage ? 1 : 0) << "," << (d.fracture ? 1 : 0) << "\n";
  }
  return os.str();
}

CtIchDataset open_ctich(const std::string& root, const ScanOptions& scan) {
  std::error_code ec;
  ICH_CHECK(fs::is_directory(root, ec), "dataset folder " << root << " does not exist");
  CtIchDataset ds;
  ds.root = root;
  const std::string scans_dir = (fs::path(root) / "ct_scans").string();
  const std::string masks_dir = (fs::path(root) / "masks").string();
  ICH_CHECK(
      fs::is_directory(scans_dir, ec),
      root << " is not a CT-ICH dataset: it has no ct_scans/ folder (expected ct_scans/NNN.nii, "
              "masks/NNN.nii and "
           << kDiagnosisCsv << ")");
  ICH_CHECK(fs::is_directory(masks_dir, ec),
            root << " is not a CT-ICH dataset: it has no masks/ folder");
  const auto scans = volumes_in(scans_dir, true);
  const auto masks = volumes_in(masks_dir, false);
  ICH_CHECK(!scans.empty(), scans_dir << " holds no scans (expected files named NNN.nii or "
                                         "NNN.nii.gz, or folders NNN/ of DICOM files)");
  for (const auto& [patient, path] : masks) {
    ICH_CHECK(scans.count(patient), path << " has no scan: " << scans_dir << "/"
                                         << patient_name(patient) << ".nii is missing");
  }
  for (const auto& [patient, scan_path] : scans) {
    auto m = masks.find(patient);
    ICH_CHECK(m != masks.end(), scan_path << " has no mask: " << masks_dir << "/"
                                          << patient_name(patient) << ".nii is missing");
    PatientFiles pf;
    pf.patient = patient;
    pf.scan_path = scan_path;
    pf.mask_path = m->second;
    pf.scan_is_dicom = is_dicom_path(scan_path);
    pf.scan_header =
        pf.scan_is_dicom ? dicom_scan_header(scan_path, scan) : read_nifti_header(scan_path);
    const NiftiHeader mask_header = read_nifti_header(m->second);
    ICH_CHECK(mask_header.nx == pf.scan_header.nx && mask_header.ny == pf.scan_header.ny &&
                  mask_header.nz == pf.scan_header.nz,
              m->second << " is " << dims_string(mask_header) << " but " << scan_path << " is "
                        << dims_string(pf.scan_header));
    ds.patients.push_back(std::move(pf));
  }

  ds.csv_path = (fs::path(root) / kDiagnosisCsv).string();
  ICH_CHECK(fs::is_regular_file(ds.csv_path, ec), root << " has no " << kDiagnosisCsv);
  ds.diagnosis = read_diagnosis_csv(ds.csv_path);
  for (const SliceDiagnosis& d : ds.diagnosis) {
    auto p = std::find_if(ds.patients.begin(), ds.patients.end(),
                          [&](const PatientFiles& f) { return f.patient == d.patient; });
    ICH_CHECK(p != ds.patients.end(), ds.csv_path << " lists patient " << d.patient
                                                  << ", who has no scan in " << scans_dir);
    ICH_CHECK(d.slice <= p->scan_header.nz, ds.csv_path << ": slice " << d.slice << " of patient "
                                                        << d.patient << " is out of range ("
                                                        << p->scan_path << " has "
                                                        << p->scan_header.nz << " slices)");
  }
  return ds;
}

PatientVolumes load_patient(const PatientFiles& files, const ScanOptions& scan_options) {
  PatientVolumes pv;
  Scan scan = read_scan(files.scan_path, scan_options);
  pv.scan = std::move(scan.volume);
  pv.nonfinite_replaced_with = scan.replaced_with;
  pv.series_uid = scan.series_uid;
  const Volume mask = read_nifti(files.mask_path);
  ICH_CHECK(mask.nx == pv.scan.nx && mask.ny == pv.scan.ny && mask.nz == pv.scan.nz,
            files.mask_path << " is " << mask.nx << "x" << mask.ny << "x" << mask.nz << " but "
                            << files.scan_path << " is " << pv.scan.nx << "x" << pv.scan.ny << "x"
                            << pv.scan.nz);
  pv.mask.resize(mask.values.size());
  for (size_t i = 0; i < mask.values.size(); ++i) pv.mask[i] = mask.values[i] > 0.0f ? 1 : 0;
  return pv;
}

}  // namespace ich::data
