#!/usr/bin/env python3
"""The GPU bundle's table: reads what the stages of run.sh (scripts/gpu_run.sh) left in its
work folder and writes bundle_results.md (one markdown table) and bundle_results.json into
the results folder. run.sh calls it after every stage, so that a run cut short still leaves
the rows it got. docs/CUDA.md ("The GPU bundle") says what each row means.

Columns: group | measurement | ours | reference | ratio | note. Fractions of peak are taken
of the H200's datasheet figures unless the GPU is another one (then the peaks computed from
its clocks by ich_cuda_probe) or ICH_PEAK_GBPS / ICH_PEAK_GFLOPS say otherwise.
"""
import argparse
import csv
import json
import os
import statistics
import xml.etree.ElementTree as ET

# The H200 SXM: 4.8 TB/s HBM3e (datasheet); FP32 without tensor cores: 132 SMs x 128 FP32
# lanes x 2 (FMA) x 1.98 GHz boost = 66.9 TFLOP/s.
H200_GBPS = 4800.0
H200_GFLOPS = 132 * 128 * 2 * 1.98


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_json(path):
    text = read(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def key_values(line):
    """'a=1 b=2 name=NVIDIA H200' -> dict; the last key (name) takes the rest of the line."""
    out, parts = {}, line.split(" name=", 1)
    for word in parts[0].split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v
    if len(parts) == 2:
        out["name"] = parts[1].strip()
    return out


def ms_of(b):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def fmt(v, digits=3):
    if v is None:
        return ""
    if abs(v) >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}g}"


def time_text(ms):
    return f"{fmt(ms * 1e3)} µs" if ms < 1 else f"{fmt(ms)} ms"


def benchmarks(work, name):
    doc = read_json(os.path.join(work, name))
    if not doc:
        return {}
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        out[b["name"]] = b
    return out


class Table:
    def __init__(self):
        self.rows = []

    def add(self, group, what, ours="", reference="", ratio="", note=""):
        self.rows.append({"group": group, "measurement": what, "ours": ours,
                          "reference": reference, "ratio": ratio, "note": note})

    def markdown(self):
        cols = ["group", "measurement", "ours", "reference", "ratio", "note"]
        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        for r in self.rows:
            cells = [str(r[c]).replace("|", "\\|").replace("\n", " ") for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def stage_rows(work):
    rows = []
    text = read(os.path.join(work, "stages.tsv")) or ""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rows.append({"stage": parts[0], "status": parts[1], "seconds": float(parts[2] or 0),
                         "note": parts[3] if len(parts) > 3 else ""})
    return rows


def stage_status(stages, name):
    for s in stages:
        if s["stage"] == name:
            return s["status"] + (f": {s['note']}" if s["note"] else "")
    return "not run"


def peaks(probe):
    name = probe.get("name", "")
    gbps, gflops, source = H200_GBPS, H200_GFLOPS, "H200 datasheet"
    if probe and "H200" not in name:
        gbps = float(probe.get("peak_dram_gbps", 0)) or gbps
        gflops = float(probe.get("peak_fp32_gflops", 0)) or gflops
        source = f"{name or 'this GPU'}, from its clocks (ich_cuda_probe)"
    if os.environ.get("ICH_PEAK_GBPS"):
        gbps, source = float(os.environ["ICH_PEAK_GBPS"]), "ICH_PEAK_GBPS / ICH_PEAK_GFLOPS"
    if os.environ.get("ICH_PEAK_GFLOPS"):
        gflops, source = float(os.environ["ICH_PEAK_GFLOPS"]), "ICH_PEAK_GBPS / ICH_PEAK_GFLOPS"
    return gbps, gflops, source


def parity_summary(work):
    text = read(os.path.join(work, "parity.xml"))
    if text is None:
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        return {"error": f"unreadable JUnit file: {e}"}
    tests, failed = set(), set()
    for case in root.iter("testcase"):
        top = case.get("name", "").split("/")[0]
        tests.add(top)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(top)
    return {"test_cases": len(tests), "failed": sorted(failed)}


def kernel_rows(t, kern, gbps, gflops):
    for name, b in kern.items():
        short = name.replace("BM_cuda_", "").replace("/manual_time", "").replace("/real_time", "")
        if b.get("error_occurred"):
            t.add("kernel", short, note="skipped: " + b.get("error_message", ""))
            continue
        ms = ms_of(b)
        if name.startswith("BM_cuda_allocator_"):
            continue  # allocator rows below
        if "GFLOP/s" in b and ("gemm" in name or "conv2d" in name or "cudnn" in name):
            g = b["GFLOP/s"]
            t.add("kernel", short, f"{fmt(g)} GFLOP/s ({time_text(ms)})",
                  f"FP32 peak {fmt(gflops)} GFLOP/s", f"{g / gflops:.2f} of peak",
                  b.get("label", ""))
        elif "bytes_per_second" in b:
            g = b["bytes_per_second"] / 1e9
            t.add("kernel", short, f"{fmt(g)} GB/s ({time_text(ms)})",
                  f"HBM peak {fmt(gbps)} GB/s", f"{g / gbps:.2f} of peak")
        else:
            t.add("kernel", short, time_text(ms))


def peer_rows(t, kern):
    for n in (256, 1024, 4096):
        ours = kern.get(f"BM_cuda_gemm_ours/{n}/manual_time")
        cub = kern.get(f"BM_cuda_gemm_cublas/{n}/manual_time")
        if not ours or not cub or ours.get("error_occurred") or cub.get("error_occurred"):
            continue
        t.add("vs cuBLAS", f"sgemm {n}x{n}x{n}", f"{fmt(ours['GFLOP/s'])} GFLOP/s",
              f"cuBLAS {fmt(cub['GFLOP/s'])} GFLOP/s",
              f"{ours['GFLOP/s'] / cub['GFLOP/s']:.2f} of cuBLAS", "target >= 0.5")
    shapes = ["1/64/160", "64/64/160", "128/128/80", "256/256/40"]
    passes = [("forward", "forward"), ("backward_data", "backward_data"),
              ("backward_weight", "backward_weight")]
    for p, cudnn_p in passes:
        for s in shapes:
            peer = kern.get(f"BM_cuda_cudnn_conv2d_{cudnn_p}/{s}/manual_time")
            c, k, side = s.split("/")
            what = f"conv3x3 {p.replace('_', '-')} 4x{c}x{side}x{side} -> {k}"
            for gemm in ("cublas", "ours"):
                ours = kern.get(f"BM_cuda_conv2d_{p}_{gemm}/{s}/manual_time")
                if not ours or ours.get("error_occurred"):
                    continue
                label = "im2col + cuBLAS" if gemm == "cublas" else "im2col + our SGEMM"
                if not peer or peer.get("error_occurred"):
                    t.add("vs cuDNN", f"{what}, {label}", time_text(ms_of(ours)), "cuDNN: not measured",
                          "", (peer or {}).get("error_message", ""))
                    continue
                t.add("vs cuDNN", f"{what}, {label}", time_text(ms_of(ours)),
                      f"cuDNN FP32 {time_text(ms_of(peer))}",
                      f"{ms_of(ours) / ms_of(peer):.2f}x cuDNN's time", "target <= 2")


def allocator_rows(t, kern, work):
    on = kern.get("BM_cuda_allocator_caching/real_time")
    off = kern.get("BM_cuda_allocator_off/real_time")
    if on and off and not on.get("error_occurred") and not off.get("error_occurred"):
        t.add("allocator", "alloc + free of one U-Net block's 9 buffers, caching on",
              f"{time_text(ms_of(on))}, {fmt(on.get('cudaMalloc_calls', 0))} cudaMalloc calls",
              f"caching off: {time_text(ms_of(off))}, {fmt(off.get('cudaMalloc_calls', 0))} calls",
              f"{ms_of(off) / ms_of(on):.1f}x faster with caching", "calls over the whole run")
    path = os.path.join(work, "allocator", "allocator.csv")
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = list(csv.DictReader(f))
    steps = [r for r in rows if r.get("what", "").startswith("train step")]
    by_variant = {r["variant"]: r for r in steps if r.get("device") == "cuda"}
    on, off = by_variant.get("caching on"), by_variant.get("caching off")
    if on and off and on.get("time_ms") and off.get("time_ms"):
        t_on, t_off = float(on["time_ms"]), float(off["time_ms"])
        t.add("allocator", f"{on['what']} (ichseg bench allocator), caching on",
              f"{fmt(t_on)} ms, {on['allocs_per_step']} cudaMalloc per step",
              f"caching off: {fmt(t_off)} ms, {off['allocs_per_step']} per step",
              f"{t_off / t_on:.2f}x step time without caching", "the cnmem experiment")
    for r in rows:
        if r.get("device") != "cuda" or r in steps:
            continue
        t.add("allocator peers", f"{r['what']}, {r['variant']}",
              f"{r['time_ms']} ms" if r.get("time_ms") else "", "", "", r.get("status", ""))


UNET = {
    ("train", 4): ("UnetTrainStep/{d}/width:64/real_time", "train step w64 b4 1x160x160"),
    ("train", 32): ("UnetTrainStep/{d}/width:64/batch:32/real_time", "train step w64 b32 1x160x160"),
    ("infer", 4): ("UnetForward/{d}/width:64/slice512:0/real_time", "inference w64 b4 1x160x160"),
    ("slice", 1): ("UnetForward/{d}/width:64/slice512:1/real_time", "inference w64 one 512x512 slice"),
}


def unet_rows(t, gpu, cpu, torch_rows):
    def pt(variant, mode, batch):
        for r in torch_rows or []:
            if r["variant"] == variant and r["mode"] == mode and r["batch"] == batch:
                return r
        return None

    for (mode, batch), (pattern, what) in UNET.items():
        ours = gpu.get(pattern.format(d="cuda"))
        ref = pt("fp32", mode, batch)
        ours_txt = "" if not ours or ours.get("error_occurred") else f"{fmt(ms_of(ours))} ms"
        if ref and "median_ms" in ref:
            ratio = f"{ms_of(ours) / ref['median_ms']:.2f}x PyTorch's time" if ours_txt else ""
            t.add("unet", what, ours_txt, f"PyTorch FP32 (TF32 off) {fmt(ref['median_ms'])} ms",
                  ratio, "target <= 1.5 at b32" if (mode, batch) == ("train", 32) else "")
        else:
            t.add("unet", what, ours_txt, "PyTorch: " + (ref or {}).get("error", "not measured"))
    for variant, label in (("tf32", "PyTorch default (TF32 convolutions)"),
                           ("channels_last", "PyTorch FP32 channels_last")):
        for (mode, batch), (pattern, what) in UNET.items():
            ref = pt(variant, mode, batch)
            if not ref:
                continue
            ours = gpu.get(pattern.format(d="cuda"))
            ok = ours and not ours.get("error_occurred") and "median_ms" in ref
            t.add("unet (extra)", what, f"{fmt(ms_of(ours))} ms" if ok else "",
                  f"{label} " + (f"{fmt(ref['median_ms'])} ms" if "median_ms" in ref else ref.get("error", "")),
                  f"{ms_of(ours) / ref['median_ms']:.2f}x" if ok else "",
                  "extra row: not the same arithmetic as ours")
    for (mode, batch), (pattern, what) in UNET.items():
        c = cpu.get(pattern.format(d="cpu"))
        g = gpu.get(pattern.format(d="cuda"))
        if not c or c.get("error_occurred"):
            continue
        if g and not g.get("error_occurred"):
            t.add("cpu vs gpu", what, f"cuda {fmt(ms_of(g))} ms", f"cpu {fmt(ms_of(c))} ms",
                  f"{ms_of(c) / ms_of(g):.1f}x speedup", "")
        else:
            t.add("cpu vs gpu", what, "cuda: not measured", f"cpu {fmt(ms_of(c))} ms", "",
                  "the CPU row alone")


ELEMENTWISE = ("fill", "add", "mul", "scale", "axpy", "relu_forward", "relu_backward",
               "sigmoid_forward", "sigmoid_backward", "dropout2d_forward", "dropout2d_backward",
               "ct_window", "ct_window_i16")


def target_rows(t, kern, gpu, torch_rows, gbps):
    """The issue's targets on the GPU, reported (never asserted)."""
    def ok(b):
        return b is not None and not b.get("error_occurred")

    fractions = []
    for n in ELEMENTWISE:
        b = kern.get(f"BM_cuda_{n}/manual_time")
        if ok(b) and "bytes_per_second" in b:
            fractions.append((b["bytes_per_second"] / 1e9 / gbps, n))
    if fractions:
        met = sum(f >= 0.8 for f, _ in fractions)
        low = min(fractions)
        t.add("target", "elementwise and windowing kernels >= 0.80 of HBM peak",
              f"{met} of {len(fractions)} meet it", f"lowest: {low[1]}", f"{low[0]:.2f} of peak",
              "met" if met == len(fractions) else "not met")
    ours = kern.get("BM_cuda_gemm_ours/4096/manual_time")
    cub = kern.get("BM_cuda_gemm_cublas/4096/manual_time")
    if ok(ours) and ok(cub):
        r = ours["GFLOP/s"] / cub["GFLOP/s"]
        t.add("target", "our SGEMM >= 0.5 of cuBLAS FP32 (4096^3)", f"{fmt(ours['GFLOP/s'])} GFLOP/s",
              f"cuBLAS {fmt(cub['GFLOP/s'])} GFLOP/s", f"{r:.2f}", "met" if r >= 0.5 else "not met")
    worst = None
    for p in ("forward", "backward_data", "backward_weight"):
        for shape in ("1/64/160", "64/64/160", "128/128/80", "256/256/40"):
            o = kern.get(f"BM_cuda_conv2d_{p}_cublas/{shape}/manual_time")
            c = kern.get(f"BM_cuda_cudnn_conv2d_{p}/{shape}/manual_time")
            if ok(o) and ok(c):
                r = ms_of(o) / ms_of(c)
                if worst is None or r > worst[0]:
                    worst = (r, f"{p} {shape}")
    if worst:
        t.add("target", "im2col convolution within 2x of cuDNN's time (U-Net shapes)",
              f"worst: {worst[1]}", "cuDNN FP32", f"{worst[0]:.2f}x",
              "met" if worst[0] <= 2 else "not met")
    ours = gpu.get("UnetTrainStep/cuda/width:64/batch:32/real_time")
    ref = next((r for r in torch_rows or [] if r.get("variant") == "fp32" and r.get("mode") == "train"
                and r.get("batch") == 32 and "median_ms" in r), None)
    if ok(ours) and ref:
        r = ms_of(ours) / ref["median_ms"]
        t.add("target", "U-Net train step within 1.5x of PyTorch FP32 at batch 32",
              f"{fmt(ms_of(ours))} ms", f"PyTorch {fmt(ref['median_ms'])} ms", f"{r:.2f}x",
              "met" if r <= 1.5 else "not met")


def epoch_rows(t, work):
    path = os.path.join(work, "epoch", "epoch.csv")
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = {r["device"]: r for r in csv.DictReader(f)}
    cpu, gpu = rows.get("cpu"), rows.get("cuda")
    if not cpu:
        return
    what = (f"epoch, the CUDA paper's table (ichseg bench epoch): {cpu['images']} images of "
            f"{cpu['size']}x{cpu['size']}, w{cpu['width']} b{cpu['batch']}")
    if gpu and gpu.get("epoch_s"):
        t.add("cpu vs gpu", what, f"cuda {gpu['epoch_s']} s", f"cpu {cpu['epoch_s']} s",
              f"{gpu['speedup_vs_cpu']}x speedup", "")
    else:
        t.add("cpu vs gpu", what, (gpu or {}).get("status", "cuda: not measured"),
              f"cpu {cpu['epoch_s']} s", "", "")


def train_rows(t, work, stages):
    doc = read_json(os.path.join(work, "train_eval.json"))
    device = ((read(os.path.join(work, "train.txt")) or "device=").strip().split("=", 1)[1])
    status = stage_status(stages, "train")
    if doc is None:
        t.add("train", "synthetic data" + (f" on {device}" if device else ""), "", "", "", status)
        return
    dice = find_metric(doc, "dice")
    jaccard = find_metric(doc, "jaccard")
    t.add("train", f"synthetic data on {device}: Dice, mean over validation slices",
          fmt(dice) if dice is not None else "?", f"Jaccard {fmt(jaccard)}" if jaccard else "",
          "", status)


def find_metric(doc, name):
    """The mean of `name` in ichseg eval's JSON (table rows keyed by metric)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k.lower() == name and isinstance(v, dict) and "mean" in v:
                return v["mean"]
        for v in doc.values():
            r = find_metric(v, name)
            if r is not None:
                return r
    if isinstance(doc, list):
        for v in doc:
            if isinstance(v, dict) and str(v.get("metric", "")).lower() == name and "mean" in v:
                return v["mean"]
            r = find_metric(v, name)
            if r is not None:
                return r
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--budget", type=float, required=True)
    a = ap.parse_args()
    work = a.work
    manifest = dict(line.split("=", 1) for line in (read(a.manifest) or "").splitlines() if "=" in line)
    env = dict(line.split("=", 1) for line in (read(os.path.join(work, "environment.txt")) or "").splitlines()
               if "=" in line)
    probe_text = read(os.path.join(work, "probe.txt")) or ""
    probe = next((key_values(l) for l in probe_text.splitlines() if l.startswith("device=0")), {})
    gbps, gflops, peak_source = peaks(probe)
    stages = stage_rows(work)
    kern = benchmarks(work, "kernels.json")
    gpu = benchmarks(work, "unet_gpu.json")
    cpu = benchmarks(work, "unet_cpu.json")
    torch_rows = read_json(os.path.join(work, "pytorch.json"))

    t = Table()
    for s in stages:
        t.add("stage", s["stage"], s["status"], "", f"{s['seconds']:.1f} s", s["note"])
    smi = (read(os.path.join(work, "nvidia-smi.csv")) or "").strip()
    t.add("machine", "GPU", probe.get("name", "none"),
          f"nvidia-smi: {smi}" if smi else "",
          "", f"cc {probe['cc']}, {probe['sms']} SMs, {int(probe['l2_bytes']) >> 20} MiB L2, "
              f"runtime {probe_text.split('runtime=')[1].split()[0]}"
          if probe else probe_text.strip().splitlines()[-1] if probe_text.strip() else "")
    t.add("machine", "CPU", env.get("cpu", "?"), f"{env.get('cores', '?')} cores",
          "", f"glibc {env.get('glibc', '?')} (the bundle needs {manifest.get('needs_glibc', '?').split()[0]})")
    t.add("machine", "peaks used for the fractions", f"HBM {fmt(gbps)} GB/s",
          f"FP32 {fmt(gflops)} GFLOP/s", "", peak_source)
    par = parity_summary(work)
    if par is None:
        t.add("parity", "test_parity", "", "", "", stage_status(stages, "parity"))
    elif "error" in par:
        t.add("parity", "test_parity", "", "", "", par["error"])
    else:
        t.add("parity", "test_parity: test cases passed",
              f"{par['test_cases'] - len(par['failed'])} of {par['test_cases']}", "", "",
              ("failed: " + "; ".join(par["failed"])) if par["failed"] else stage_status(stages, "parity"))
    target_rows(t, kern, gpu, torch_rows, gbps)
    kernel_rows(t, kern, gbps, gflops)
    peer_rows(t, kern)
    allocator_rows(t, kern, work)
    unet_rows(t, gpu, cpu, torch_rows)
    epoch_rows(t, work)
    train_rows(t, work, stages)

    header = (f"# ichseg GPU bundle results\n\nBundle {manifest.get('commit', '?')} built "
              f"{manifest.get('built', '?')}; run budget {a.budget:.0f} s. GPU: "
              f"{probe.get('name', 'none')}. Rows: docs/CUDA.md, \"The GPU bundle\".\n\n")
    md = header + t.markdown() + "\n"
    doc = {"manifest": manifest, "environment": env, "probe": probe,
           "peaks": {"gbps": gbps, "gflops": gflops, "source": peak_source},
           "stages": stages, "parity": par, "rows": t.rows, "pytorch": torch_rows,
           "benchmarks": {k: {f: v for f, v in b.items() if f in (
               "real_time", "time_unit", "iterations", "bytes_per_second", "GFLOP/s",
               "images/s", "cudaMalloc_calls", "cache_hits", "peak_rss_MiB", "label",
               "error_occurred", "error_message")}
               for src in (kern, gpu, cpu) for k, b in src.items()}}
    for name, text in (("bundle_results.md", md),
                       ("bundle_results.json", json.dumps(doc, indent=1) + "\n")):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(a.out, name))


if __name__ == "__main__":
    main()
