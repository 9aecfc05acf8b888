#!/usr/bin/env python3
"""The medicaltorch U-Net in PyTorch, timed like bench/bench_train_step.cpp.

Used by bench/compare_pytorch.sh; never a build or test dependency. One mode per run:
  train  forward + soft Dice loss + backward + Adam step, batch 4, 1x160x160
  infer  eval-mode forward, no grad, batch 4, 1x160x160
  slice  eval-mode forward, no grad, batch 1, 1x512x512
Prints one line: `pytorch mode=M width=W params=P median_ms=T peak_rss_mib=R threads=N`.
The architecture is medicaltorch.models.Unet (blocks of conv3x3 -> ReLU -> BatchNorm ->
Dropout2d, 3 max pools, bilinear x2 upsampling with align_corners=True + concat, a final
3x3 conv to one channel and a sigmoid) with the first level's width as a parameter.
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DownConv(nn.Module):
    def __init__(self, in_feat, out_feat, drop_rate=0.4, bn_momentum=0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_feat, out_feat, kernel_size=3, padding=1)
        self.conv1_bn = nn.BatchNorm2d(out_feat, momentum=bn_momentum)
        self.conv1_drop = nn.Dropout2d(drop_rate)
        self.conv2 = nn.Conv2d(out_feat, out_feat, kernel_size=3, padding=1)
        self.conv2_bn = nn.BatchNorm2d(out_feat, momentum=bn_momentum)
        self.conv2_drop = nn.Dropout2d(drop_rate)

    def forward(self, x):
        x = self.conv1_drop(self.conv1_bn(F.relu(self.conv1(x))))
        return self.conv2_drop(self.conv2_bn(F.relu(self.conv2(x))))


class UpConv(nn.Module):
    def __init__(self, in_feat, out_feat, drop_rate=0.4, bn_momentum=0.1):
        super().__init__()
        self.downconv = DownConv(in_feat, out_feat, drop_rate, bn_momentum)

    def forward(self, x, y):
        x = F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True)
        return self.downconv(torch.cat([x, y], dim=1))


class Unet(nn.Module):
    def __init__(self, width=64, drop_rate=0.4, bn_momentum=0.1):
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.conv1 = DownConv(1, w1, drop_rate, bn_momentum)
        self.mp1 = nn.MaxPool2d(2)
        self.conv2 = DownConv(w1, w2, drop_rate, bn_momentum)
        self.mp2 = nn.MaxPool2d(2)
        self.conv3 = DownConv(w2, w3, drop_rate, bn_momentum)
        self.mp3 = nn.MaxPool2d(2)
        self.conv4 = DownConv(w3, w3, drop_rate, bn_momentum)
        self.up1 = UpConv(w3 + w3, w3, drop_rate, bn_momentum)
        self.up2 = UpConv(w3 + w2, w2, drop_rate, bn_momentum)
        self.up3 = UpConv(w2 + w1, w1, drop_rate, bn_momentum)
        self.conv9 = nn.Conv2d(w1, 1, kernel_size=3, padding=1)

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(self.mp1(x1))
        x3 = self.conv3(self.mp2(x2))
        x4 = self.conv4(self.mp3(x3))
        u = self.up1(x4, x3)
        u = self.up2(u, x2)
        u = self.up3(u, x1)
        return torch.sigmoid(self.conv9(u))


def dice_loss(p, t, smooth=1.0):
    # medicaltorch.losses.dice_loss: negative soft Dice over the whole batch.
    p, t = p.reshape(-1), t.reshape(-1)
    inter = (p * t).sum()
    return -(2.0 * inter + smooth) / (p.sum() + t.sum() + smooth)


def make_step(net, x, y, mode):
    """One timed call of `mode`: train (forward + soft Dice + backward + Adam) or an eval
    forward without grad. Its value is read back to the host, which waits for the device."""
    if mode == "train":
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            loss = dice_loss(net(x), y)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        net.eval()

        def step():
            with torch.no_grad():
                return float(net(x).reshape(-1)[0])
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "infer", "slice"], default="train")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Unet(a.width)
    params = sum(p.numel() for p in net.parameters())
    batch, size = (1, 512) if a.mode == "slice" else (4, 160)
    x = torch.rand(batch, 1, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.9).float()
    step = make_step(net, x, y, a.mode)
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"pytorch mode={a.mode} width={a.width} params={params} "
          f"median_ms={statistics.median(times):.1f} peak_rss_mib={rss:.0f} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")


if __name__ == "__main__":
    main()
