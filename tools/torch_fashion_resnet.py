#!/usr/bin/env python3
"""PyTorch's wall time for lamina's Fashion-MNIST ResNet recipe (issue 14's note).

Builds in PyTorch the architecture of ``lamina.models.resnet_mnist(width)`` -- stem conv3x3-BN-ReLU,
BasicBlocks of widths w, 2w, 4w (conv-BN-ReLU-conv-BN + skip, a 1x1 conv-BN projection when the
shape changes), global average pool, Linear -- with the same module names, so the two state_dicts
match key for key, and trains it with the recipe of

    lamina train --dataset fashion-mnist --model resnet --width 24 --augment --batch-size 128 \\
        --lr 0.1 --weight-decay 5e-4 --schedule onecycle --threads 2

SGD (momentum 0.9, weight decay 5e-4), the 1cycle learning rate set before every batch from the
fractional epoch (cosine up to 0.1 over 30%, then down; lamina.train.onecycle_lr), batch 128
reshuffled every epoch, random crop with padding 2 + horizontal flip, inputs in [0, 1], 2 threads.
Each epoch prints the training img/s and seconds, then the test evaluation (batches of 1000) and its
seconds. torch is a benchmark oracle here: nothing in lamina imports it.

    python tools/torch_fashion_resnet.py --epochs 1 --data ../shared/data
"""
from __future__ import annotations

import argparse
import gzip
import math
import os
import sys
import time
from collections import OrderedDict

import numpy as np


def read_idx(path):
    """An IDX file (optionally gzipped) as a NumPy array: magic (0, 0, dtype 0x08, ndim), sizes, bytes."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4]!r})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(root, train):
    prefix = "train" if train else "t10k"
    folder = os.path.join(root, "fashion-mnist")
    images, labels = (os.path.join(folder, f"{prefix}-{kind}-idx{n}-ubyte.gz")
                      for kind, n in (("images", 3), ("labels", 1)))
    x = read_idx(images).astype(np.float32) / np.float32(255.0)
    return x[:, None, :, :], read_idx(labels).astype(np.int64)


def build_model(torch, width=24, num_classes=10, in_channels=1):
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(OrderedDict([
                    ("conv", nn.Conv2d(cin, cout, 1, stride=stride, bias=False)),
                    ("bn", nn.BatchNorm2d(cout))]))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            skip = x if self.downsample is None else self.downsample(x)
            return torch.relu(out + skip)

    w = int(width)
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(in_channels, w, 3, padding=1, bias=False)),
        ("stem_bn", nn.BatchNorm2d(w)),
        ("stem_relu", nn.ReLU()),
        ("block1", BasicBlock(w, w)),
        ("block2", BasicBlock(w, 2 * w, stride=2)),
        ("block3", BasicBlock(2 * w, 4 * w, stride=2)),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(4 * w, num_classes)),
    ]))


def onecycle_lr(max_lr, total_epochs, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    """The same curve as lamina.train.onecycle_lr (PyTorch's OneCycleLR, cosine, lr only)."""
    start = max_lr / div_factor
    end = start / final_div_factor

    def lr(t):
        p = min(max(t / max(total_epochs, 1e-12), 0.0), 1.0)
        if p < pct_start:
            return start + (max_lr - start) * 0.5 * (1.0 - math.cos(math.pi * p / pct_start))
        q = (p - pct_start) / max(1.0 - pct_start, 1e-12)
        return end + (max_lr - end) * 0.5 * (1.0 + math.cos(math.pi * q))
    return lr


def random_crop_flip(torch, x, gen, padding=2):
    """Each image: zero-pad by `padding`, take a random H x W window, mirror with probability 1/2."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    rows = top[:, None] + torch.arange(h)[None, :]                    # (N, H) source rows
    cols = left[:, None] + torch.arange(w)[None, :]                   # (N, W) source columns
    mirrored = torch.rand(n, generator=gen) < 0.5
    cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def evaluate(torch, model, x, y, batch=1000):
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb, yb = x[i:i + batch], y[i:i + batch]
            logits = model(xb)
            loss_sum += float(torch.nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    return loss_sum / len(x), correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("LAMINA_DATA", "../shared/data"),
                    help="folder holding fashion-mnist/ (default $LAMINA_DATA or ../shared/data)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-train", type=int, default=None, help="train on the first N images (a smoke test)")
    ap.add_argument("--limit-test", type=int, default=None)
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train = load_split(args.data, True)
    x_test, y_test = load_split(args.data, False)
    if args.limit_train:
        x_train, y_train = x_train[:args.limit_train], y_train[:args.limit_train]
    if args.limit_test:
        x_test, y_test = x_test[:args.limit_test], y_test[:args.limit_test]
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)

    model = build_model(torch, args.width)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    schedule = onecycle_lr(args.lr, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    n = len(x_train)
    n_batches = (n + args.batch_size - 1) // args.batch_size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; resnet width {args.width}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; {n} train / {len(x_test)} test images; "
          f"batch {args.batch_size}, sgd lr {args.lr:g} onecycle momentum {args.momentum:g} "
          f"wd {args.weight_decay:g}, crop pad 2 + flip", flush=True)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        t0 = time.perf_counter()
        for b in range(n_batches):
            for group in opt.param_groups:
                group["lr"] = schedule(epoch + b / n_batches)
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            xb = random_crop_flip(torch, x_train[idx], gen)
            yb = y_train[idx]
            logits = model(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        test_loss, test_acc = evaluate(torch, model, x_test, y_test)
        test_s = time.perf_counter() - t1
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / n:.4f} acc {100 * correct / n:.2f}% | "
              f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}% | train {n / train_s:.0f} img/s, "
              f"{train_s:.1f} s | test eval {len(x_test) / test_s:.0f} img/s, {test_s:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
