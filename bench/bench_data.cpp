// Data pipeline throughput at the training shapes (512x512 slices):
//   prepare    NIfTI -> windowed PNG slices + masks (slices/s)
//   loader     batches/s of the background loader: whole slices (batch 8) and 160x160
//              patches (batch 16), with and without augmentation
//   nifti      reading one 512x512x30 int16 volume
//   synth      one synthetic 512x512x30 patient
//   dicom      reading a 512x512x40 CT series (scan + read), next to the same volume as NIfTI;
//              also RLE and JPEG-LS copies when DCMTK's tools are installed (slices/s)
// Run: build/bench/ich_bench --benchmark_filter='Data'
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "data/dicom.h"
#include "data/dicom_write.h"
#include "data/loader.h"
#include "data/nifti.h"
#include "data/phantom.h"
#include "data/prepare.h"
#include "data/slices.h"

namespace fs = std::filesystem;
using namespace ich::data;

namespace {

// A synthetic dataset (3 patients, 512x512x~30) and its prepared form, made once.
struct DataBenchFixture {
  std::string root;
  std::string data, prepared;
  int slices = 0;
  DataBenchFixture() {
    root =
        (fs::temp_directory_path() / ("ichseg-bench-data-" + std::to_string(::getpid()))).string();
    fs::remove_all(root);
    fs::create_directories(root);
    data = root + "/ds";
    prepared = root + "/prep";
    SynthOptions so;
    so.patients = 3;
    so.seed = 1;
    slices = write_synthetic_dataset(data, so).slices;
    PrepareOptions po;
    po.data_dir = data;
    po.out_dir = prepared;
    prepare_dataset(po);
  }
  ~DataBenchFixture() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

DataBenchFixture& fixture() {
  static DataBenchFixture f;
  return f;
}

void BM_DataPrepare(benchmark::State& state) {
  DataBenchFixture& f = fixture();
  PrepareOptions po;
  po.data_dir = f.data;
  po.out_dir = f.root + "/prep_bench";
  int64_t slices = 0;
  for (auto _ : state) slices += prepare_dataset(po).slices;
  state.SetItemsProcessed(slices);
  state.counters["slices/s"] = benchmark::Counter(double(slices), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataPrepare)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

// Arguments: patch size (0 = whole slices), batch size, augmentation on/off.
void BM_DataLoader(benchmark::State& state) {
  DataBenchFixture& f = fixture();
  std::shared_ptr<const SliceSource> source = open_prepared(f.prepared);
  LoaderOptions o;
  o.patch = static_cast<int>(state.range(0));
  o.batch_size = static_cast<int>(state.range(1));
  if (state.range(2)) {
    o.augment.flip_horizontal = 0.5;
    o.augment.rotate_degrees = 10;
    o.augment.elastic_sigma = 10;
    o.augment.noise_std = 0.01;
  }
  BatchLoader loader(source, o);
  int epoch = 0;
  loader.start_epoch(epoch);
  Batch batch;
  int64_t batches = 0;
  for (auto _ : state) {
    if (!loader.next(&batch)) {
      loader.start_epoch(++epoch);
      loader.next(&batch);
    }
    benchmark::DoNotOptimize(batch.images.data());
    ++batches;
  }
  state.counters["batches/s"] = benchmark::Counter(double(batches), benchmark::Counter::kIsRate);
  state.counters["images/s"] =
      benchmark::Counter(double(batches) * o.batch_size, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataLoader)
    ->ArgNames({"patch", "batch", "augment"})
    ->Args({0, 8, 0})
    ->Args({0, 8, 1})
    ->Args({160, 16, 0})
    ->Args({160, 16, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_DataNiftiRead(benchmark::State& state) {
  DataBenchFixture& f = fixture();
  const std::string path = f.data + "/ct_scans/001.nii";
  for (auto _ : state) {
    const Volume v = read_nifti(path);
    benchmark::DoNotOptimize(v.values.data());
  }
}
BENCHMARK(BM_DataNiftiRead)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DataSynthPatient(benchmark::State& state) {
  SynthOptions so;
  so.seed = 2;
  int p = 1;
  for (auto _ : state) {
    const PhantomPatient pp = make_phantom_patient(so, p++);
    benchmark::DoNotOptimize(pp.hu.data());
  }
}
BENCHMARK(BM_DataSynthPatient)->Unit(benchmark::kMillisecond)->UseRealTime();

// A 512x512x40 phantom as a DICOM series (plain, and RLE / JPEG-LS copies made by DCMTK's
// tools when installed) and as one int16 NIfTI, made once.
struct DicomBenchFixture {
  std::string root, plain, rle, jpegls, nifti;
  int slices = 40;
  DicomBenchFixture() {
    root =
        (fs::temp_directory_path() / ("ichseg-bench-dicom-" + std::to_string(::getpid()))).string();
    fs::remove_all(root);
    fs::create_directories(root);
    SynthOptions so;
    so.slices = slices;
    so.slice_jitter = 0;
    so.seed = 3;
    const PhantomPatient pp = make_phantom_patient(so, 1);
    Volume v;
    v.nx = pp.nx;
    v.ny = pp.ny;
    v.nz = pp.nz;
    for (int i = 0; i < 3; ++i) v.spacing[i] = pp.spacing[i];
    v.values.assign(pp.hu.begin(), pp.hu.end());
    plain = root + "/plain";
    DicomWriteOptions o;
    dicom_centred_origin(v, o.origin);
    const DicomWriteResult w = write_dicom_series(plain, v, o);
    nifti = root + "/ct.nii";
    NiftiWriteOptions no;
    for (int i = 0; i < 3; ++i) no.spacing[i] = v.spacing[i];
    write_nifti(nifti, v.nx, v.ny, v.nz, kNiftiInt16, pp.hu.data(), no);
    rle = transcode(w, "rle", "dcmcrle");
    jpegls = transcode(w, "jpegls", "dcmcjpls");
  }
  ~DicomBenchFixture() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  // "" when the tool is not installed.
  std::string transcode(const DicomWriteResult& w, const std::string& name,
                        const std::string& tool) const {
    if (std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) != 0) return "";
    const std::string dir = root + "/" + name;
    fs::create_directories(dir);
    for (const std::string& f : w.files) {
      const std::string cmd = tool + " '" + f + "' '" + dir + "/" +
                              fs::path(f).filename().string() + "' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) return "";
    }
    return dir;
  }
};

DicomBenchFixture& dicom_fixture() {
  static DicomBenchFixture f;
  return f;
}

// Argument: 0 plain (explicit VR little endian), 1 RLE, 2 JPEG-LS.
void BM_DataDicomSeriesRead(benchmark::State& state) {
  DicomBenchFixture& f = dicom_fixture();
  const std::string dirs[] = {f.plain, f.rle, f.jpegls};
  const std::string& dir = dirs[state.range(0)];
  if (dir.empty()) {
    state.SkipWithError("DCMTK's tools (package dcmtk) are not installed");
    return;
  }
  int64_t slices = 0;
  for (auto _ : state) {
    const DicomFolder folder = scan_dicom_folder(dir);
    const DicomVolume v = read_dicom_series(select_dicom_series(folder, ""));
    benchmark::DoNotOptimize(v.volume.values.data());
    slices += v.volume.nz;
  }
  state.counters["slices/s"] = benchmark::Counter(double(slices), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataDicomSeriesRead)
    ->ArgName("syntax")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The folder scan alone (headers of every file, no pixel decoded).
void BM_DataDicomScan(benchmark::State& state) {
  DicomBenchFixture& f = dicom_fixture();
  int64_t files = 0;
  for (auto _ : state) {
    const DicomFolder folder = scan_dicom_folder(f.plain);
    files += folder.dicom_files;
  }
  state.counters["files/s"] = benchmark::Counter(double(files), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataDicomScan)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same 512x512x40 volume from one int16 NIfTI.
void BM_DataDicomNiftiPeer(benchmark::State& state) {
  DicomBenchFixture& f = dicom_fixture();
  int64_t slices = 0;
  for (auto _ : state) {
    const Volume v = read_nifti(f.nifti);
    benchmark::DoNotOptimize(v.values.data());
    slices += v.nz;
  }
  state.counters["slices/s"] = benchmark::Counter(double(slices), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DataDicomNiftiPeer)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
