#!/usr/bin/env python3
"""CTest `bundle`: the GPU bundle's report (scripts/gpu_bundle_report.py) writes every GPU row.

No GPU is needed: this builds a work folder as run.sh's stages leave it on a GPU machine,
with made-up numbers (a fixture, not a measurement) under the benchmark names that
ich_bench really registers (--benchmark_list_tests), runs the report on it and checks that
every group has its rows and every ratio is a number. So a renamed benchmark or a mistake
in the report's GPU branches fails here, not in the few minutes a GPU is lent.

  report_selftest.py REPORT_PY ICH_BENCH
"""
import json
import os
import subprocess
import sys
import tempfile


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def bench_doc(entries):
    return json.dumps({"context": {}, "benchmarks": entries})


def main():
    report_py, ich_bench = sys.argv[1], sys.argv[2]
    names = subprocess.run([ich_bench, "--benchmark_list_tests", "--benchmark_filter=^BM_cuda_"],
                           check=True, capture_output=True, text=True).stdout.split()
    if len(names) < 50:
        sys.exit(f"report_selftest: ich_bench lists only {len(names)} BM_cuda_ cases")
    kernels = []
    for i, n in enumerate(names):
        b = {"name": n, "run_type": "iteration", "iterations": 100, "real_time": 100.0 + i,
             "time_unit": "us", "bytes_per_second": 3.9e12}
        if "gemm" in n or "conv2d" in n:
            b["GFLOP/s"] = 20000.0 + 10 * i
        if "allocator" in n:
            b.update({"cudaMalloc_calls": 9.0 if "off" not in n else 9000.0, "cache_hits": 8991.0})
            del b["bytes_per_second"]
        kernels.append(b)
    unet = [
        "UnetTrainStep/{d}/width:64/real_time", "UnetTrainStep/{d}/width:64/batch:32/real_time",
        "UnetForward/{d}/width:64/slice512:0/real_time", "UnetForward/{d}/width:64/slice512:1/real_time"]
    gpu = [{"name": u.format(d="cuda"), "run_type": "iteration", "real_time": 20.0, "time_unit": "ms"}
           for u in unet]
    cpu = [{"name": u.format(d="cpu"), "run_type": "iteration", "real_time": 900.0, "time_unit": "ms"}
           for u in unet if "batch:32" not in u]
    torch_rows = [{"variant": v, "mode": m, "width": 64, "batch": b, "size": s, "median_ms": 15.0}
                  for v in ("fp32", "tf32", "channels_last")
                  for m, b, s in (("train", 4, 160), ("train", 32, 160), ("infer", 4, 160), ("slice", 1, 512))]
    with tempfile.TemporaryDirectory() as tmp:
        work, out = os.path.join(tmp, "work"), os.path.join(tmp, "out")
        os.makedirs(out)
        write(os.path.join(work, "probe.txt"),
              "cuda_probe runtime=13000 driver=13000 devices=1\n"
              "device=0 cc=9.0 sms=132 clock_khz=1980000 mem_clock_khz=3201000 bus_bits=6144 "
              "mem_mib=143771 l2_bytes=62914560 fp32_lanes_per_sm=128 peak_fp32_gflops=66908 "
              "peak_dram_gbps=4917 name=NVIDIA H200\n")
        write(os.path.join(work, "environment.txt"), "cpu=fixture\ncores=16\nglibc=2.39\n")
        write(os.path.join(work, "stages.tsv"), "".join(
            f"{s}\tok\t1.0\t\n" for s in ("environment", "gpu", "parity", "kernels", "unet-gpu",
                                           "pytorch", "unet-cpu", "allocator", "epoch", "train")))
        write(os.path.join(work, "parity.xml"),
              '<testsuites><testsuite name="test_parity" tests="2">'
              '<testcase classname="x" name="a/one"/><testcase classname="x" name="b"/>'
              "</testsuite></testsuites>")
        write(os.path.join(work, "kernels.json"), bench_doc(kernels))
        write(os.path.join(work, "unet_gpu.json"), bench_doc(gpu))
        write(os.path.join(work, "unet_cpu.json"), bench_doc(cpu))
        write(os.path.join(work, "pytorch.json"), json.dumps(torch_rows))
        write(os.path.join(work, "allocator", "allocator.csv"),
              "what,device,variant,status,time_ms,allocs_per_step,cache_hits_per_step,tensor_peak_mib,peak_rss_mib\n"
              "train step w64 b4 160x160,cuda,caching on,measured,30,2,300,900,1200\n"
              "train step w64 b4 160x160,cuda,caching off,measured,45,302,0,900,1200\n"
              "sgemm 1024x1024x1024,cuda,cuBLAS,measured,0.1,,,,\n")
        write(os.path.join(work, "epoch", "epoch.csv"),
              "device,status,width,size,batch,images,epoch_s,step_s_median,images_per_s,speedup_vs_cpu,peak_rss_mib,tensor_peak_mib\n"
              "cpu,measured,16,64,8,64,0.6,0.07,104,1,243,55\n"
              "cuda,measured,16,64,8,64,0.05,0.006,1280,12,300,56\n")
        write(os.path.join(work, "train.txt"), "device=cuda\n")
        write(os.path.join(work, "train_eval.json"),
              json.dumps({"table": {"dice": {"mean": 0.8}, "jaccard": {"mean": 0.7}}}))
        write(os.path.join(tmp, "MANIFEST.txt"), "commit=fixture\nneeds_glibc=GLIBC_2.34 needs_glibcxx=GLIBCXX_3.4.30\n")
        subprocess.run([sys.executable, report_py, "--work", work, "--out", out, "--manifest",
                        os.path.join(tmp, "MANIFEST.txt"), "--budget", "480"], check=True)
        doc = json.load(open(os.path.join(out, "bundle_results.json")))
        md = open(os.path.join(out, "bundle_results.md")).read()

    groups = {}
    for r in doc["rows"]:
        groups.setdefault(r["group"], []).append(r)
    n_kernels = len([n for n in names if "allocator" not in n])
    expect = {"kernel": n_kernels, "vs cuBLAS": 3, "vs cuDNN": 24, "allocator": 2, "unet": 4,
              "unet (extra)": 8, "cpu vs gpu": 4, "train": 1, "parity": 1, "target": 4}
    problems = [f"group '{g}': {len(groups.get(g, []))} rows, expected {n}"
                for g, n in expect.items() if len(groups.get(g, [])) != n]
    for g in ("target", "kernel", "vs cuBLAS", "vs cuDNN", "allocator", "unet", "unet (extra)", "cpu vs gpu"):
        for r in groups.get(g, []):
            if not r["ratio"] or "nan" in r["ratio"].lower():
                problems.append(f"{g} / {r['measurement']}: no ratio ({r})")
    if "| parity | test_parity: test cases passed | 2 of 2 |" not in md:
        problems.append("the parity row does not say 2 of 2")
    if problems:
        sys.exit("report_selftest: FAILED\n  " + "\n  ".join(problems))
    print(f"report_selftest: {len(doc['rows'])} rows, every group complete")


if __name__ == "__main__":
    main()
