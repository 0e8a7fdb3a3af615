"""PyTorch (CPU, one thread) reference for Chorus's CNNs on Fashion-MNIST, the same recipe as the
config: benchmarks/configs/cnn.json (conv 32 → pool → conv 64 → pool → dense 128 → 10, ReLU, Adam,
global clip-norm) or, with --bn-dropout, benchmarks/configs/cnn-bn-dropout.json (batch norm and
dropout, AdamW 3e-3 with weight decay 0.05 and a cosine schedule).

    python cnn_torch.py speed STEPS [--bn-dropout]    → samples_per_s N   (warm-up steps excluded)
    python cnn_torch.py train EPOCHS [--bn-dropout]   → test_accuracy A   (per epoch, then the last)
Used by benchmarks/cnn-vs-torch.sh."""
import gzip
import math
import sys
import time

import numpy as np
import torch
from torch import nn


def load(split, root="/usr/share/datasets/fashion-mnist"):
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(f"{root}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32)
    with gzip.open(f"{root}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def model(bn_dropout):
    if not bn_dropout:
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(128 * 3 * 3, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(256, 10))


def main():
    mode, count, bn_dropout = sys.argv[1], int(sys.argv[2]), "--bn-dropout" in sys.argv
    torch.set_num_threads(1)
    torch.manual_seed(1)
    x, y = load("train")
    mean, std = x.mean(), x.std()
    x = torch.from_numpy((x - mean) / std)
    y = torch.from_numpy(y)
    net = model(bn_dropout)
    if bn_dropout:
        optimizer, clip = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.05), 5.0
    else:
        optimizer, clip = torch.optim.Adam(net.parameters(), lr=1e-3), 1.0
    batch = 128
    steps_per_epoch = math.ceil(len(x) / batch)
    total = count * steps_per_epoch if mode == "train" else count
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total) if bn_dropout else None

    def step(index):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net(x[index]), y[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
        if scheduler:
            scheduler.step()

    generator = torch.Generator().manual_seed(1)
    if mode == "speed":
        order = torch.randperm(len(x), generator=generator)
        warmup, start = 10, None
        for s in range(count + warmup):
            if s == warmup:
                start = time.perf_counter()
            step(order[(s * batch) % (len(x) - batch):][:batch])
        print(f"samples_per_s {count * batch / (time.perf_counter() - start):.1f}")
        return
    tx, ty = load("test")
    tx, ty = torch.from_numpy((tx - mean) / std), torch.from_numpy(ty)
    for epoch in range(count):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for s in range(steps_per_epoch):
            step(order[s * batch:(s + 1) * batch])
        net.eval()
        with torch.no_grad():
            accuracy = (net(tx).argmax(1) == ty).float().mean().item()
        print(f"epoch {epoch + 1} test_accuracy {accuracy:.4f}", flush=True)
    print(f"test_accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
