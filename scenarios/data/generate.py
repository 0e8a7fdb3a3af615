#!/usr/bin/env python3
"""Generates the small CSV data sets the scenarios use (deterministic; run from this folder)."""
import random

def write(path, rows, features):
    with open(path, "w") as f:
        f.write(",".join([f"f{i}" for i in range(features)] + ["label"]) + "\n")
        for x, y in rows:
            f.write(",".join(x) + f",{y}\n")

rng = random.Random(7)
F = 20
# One-class labels: informative-looking features, every label 1.
for name, n in [("one-class-train.csv", 2000), ("one-class-test.csv", 400)]:
    write(name, [([f"{rng.gauss(0, 1):.4f}" for _ in range(F)], 1) for _ in range(n)], F)
# Overflow: features of magnitude ~1e38 (finite Float32), labels from the sign of f0.
for name, n in [("overflow-train.csv", 2000), ("overflow-test.csv", 400)]:
    rows = []
    for _ in range(n):
        x = [rng.uniform(-3.0e38, 3.0e38) for _ in range(F)]
        rows.append(([f"{v:.6e}" for v in x], int(x[0] > 0)))
    write(name, rows, F)
# A healthy 3-class problem for CSV-based healthy runs: Gaussian blobs.
for name, n in [("blobs-train.csv", 2000), ("blobs-test.csv", 400)]:
    rows = []
    for _ in range(n):
        c = rng.randrange(3)
        rows.append(([f"{rng.gauss(1.5 * (c == i % 3), 1):.4f}" for i in range(F)], c))
    write(name, rows, F)
# A binary problem (labels 0/1) for the one-unit scenarios.
for name, n in [("binary-train.csv", 2000), ("binary-test.csv", 400)]:
    rows = []
    for _ in range(n):
        c = rng.randrange(2)
        rows.append(([f"{rng.gauss(0.8 * c, 1):.4f}" for _ in range(F)], c))
    write(name, rows, F)
# Labels shifted down one row relative to their features (a misaligned label column): the blobs
# training set with row i carrying row i−1's label; the test set keeps its own alignment.
lines = open("blobs-train.csv").read().splitlines()
labels = [line.rsplit(",", 1)[1] for line in lines[1:]]
with open("blobs-shifted-train.csv", "w") as f:
    f.write(lines[0] + "\n")
    for i, line in enumerate(lines[1:]):
        f.write(line.rsplit(",", 1)[0] + "," + labels[i - 1] + "\n")
# Noisy labels: the blobs training set with 10 % of its labels replaced by another class.
rng_noise = random.Random(11)
with open("blobs-noisy-train.csv", "w") as f:
    f.write(lines[0] + "\n")
    for line in lines[1:]:
        features, label = line.rsplit(",", 1)
        if rng_noise.random() < 0.1:
            label = str((int(label) + rng_noise.randrange(1, 3)) % 3)
        f.write(features + "," + label + "\n")
# A 90/10 binary task whose minority class is shifted by a small margin: a model predicts the
# majority class for a while before it learns the minority.
rng_imbalance = random.Random(13)
for name, n in [("imbalanced-train.csv", 2000), ("imbalanced-test.csv", 400)]:
    rows = []
    for _ in range(n):
        c = 1 if rng_imbalance.random() < 0.1 else 0
        rows.append(([f"{rng_imbalance.gauss(0.8 * c if i < 5 else 0, 1):.4f}" for i in range(F)], c))
    write(name, rows, F)
# One feature on a scale 1000× the others (a column in other units), for a run without normalization.
for source, target in [("blobs-train.csv", "blobs-scaled-train.csv"), ("blobs-test.csv", "blobs-scaled-test.csv")]:
    rows = open(source).read().splitlines()
    with open(target, "w") as f:
        f.write(rows[0] + "\n")
        for line in rows[1:]:
            values = line.split(",")
            values[3] = f"{float(values[3]) * 1000:.1f}"
            f.write(",".join(values) + "\n")
# The same, pre-standardized by the user with one global mean and std (not per feature), so the
# data as a whole looks normalized (mean ≈ 0, std ≈ 1) while feature 3 still spans ~1000× the rest.
for source, target in [("blobs-scaled-train.csv", "blobs-global-train.csv"), ("blobs-scaled-test.csv", "blobs-global-test.csv")]:
    rows = open(source).read().splitlines()
    train = [[float(v) for v in line.split(",")[:-1]] for line in open("blobs-scaled-train.csv").read().splitlines()[1:]]
    flat = [v for row in train for v in row]
    mean = sum(flat) / len(flat)
    std = (sum((v - mean) ** 2 for v in flat) / len(flat)) ** 0.5
    with open(target, "w") as f:
        f.write(rows[0] + "\n")
        for line in rows[1:]:
            values = line.split(",")
            f.write(",".join(f"{(float(v) - mean) / std:.6f}" for v in values[:-1]) + "," + values[-1] + "\n")
