#!/usr/bin/env python3
"""The medicaltorch U-Net of bench/unet_pytorch.py on a GPU, every configuration the GPU
bundle compares with ours (scripts/gpu_run.sh, stage `pytorch`), in one process.

Never a build or test dependency. For each variant and mode it times `--iters` calls after
`--warmup` untimed ones, each call ending in torch.cuda.synchronize(), and writes a JSON
list of {variant, mode, width, batch, size, median_ms, min_ms, peak_mib, ...} to --out.

Variants:
  fp32           float32 with TF32 off for convolutions and matmuls: the arithmetic of our
                 cuda backend, so this is the comparison
  tf32           PyTorch's defaults (cuDNN convolutions may use TF32 tensor cores)
  channels_last  float32, TF32 off, model and input in channels_last (NHWC) memory format
Modes (as unet_pytorch.py): train (forward + soft Dice + backward + Adam) at batch 4 and 32,
infer (eval, no grad) at batch 4, 1x160x160; slice: eval, batch 1, 1x512x512.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_pytorch import Unet, make_step  # noqa: E402  (the one model and step)

CASES = [("train", 4, 160), ("train", 32, 160), ("infer", 4, 160), ("slice", 1, 512)]
VARIANTS = ["fp32", "tf32", "channels_last"]


def set_variant(variant):
    tf32 = variant == "tf32"
    if tf32:  # PyTorch's own defaults
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def time_case(variant, mode, batch, size, width, iters, warmup):
    set_variant(variant)
    torch.manual_seed(0)
    dev = torch.device("cuda")
    fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    net = Unet(width).to(dev).to(memory_format=fmt)
    x = torch.rand(batch, 1, size, size, device=dev).to(memory_format=fmt)
    y = (torch.rand(batch, 1, size, size, device=dev) > 0.9).float()
    step = make_step(net, x, y, mode)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "variant": variant, "mode": mode, "width": width, "batch": batch, "size": size,
        "median_ms": statistics.median(times), "min_ms": min(times), "iters": iters,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
        "params": sum(p.numel() for p in net.parameters()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("unet_pytorch_cuda: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    info = {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "gpu": torch.cuda.get_device_name(0)}
    print("pytorch", " ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    rows = []
    for variant in a.variants.split(","):
        for mode, batch, size in CASES:
            try:
                r = time_case(variant, mode, batch, size, a.width, a.iters, a.warmup)
            except RuntimeError as e:  # out of memory, a cuDNN error: a row that says so
                r = {"variant": variant, "mode": mode, "width": a.width, "batch": batch,
                     "size": size, "error": str(e).splitlines()[0]}
            r.update(info)
            rows.append(r)
            print(json.dumps(r), flush=True)
            tmp = a.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(rows, f, indent=1)
            os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
