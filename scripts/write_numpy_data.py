#!/usr/bin/env python3
"""Writes one small classification data set four ways, with NumPy itself, for the NumPy data tests:
CSV (train.csv/test.csv), .npy files (float32 features, int64 labels), an .npz (np.savez) and a
compressed .npz (np.savez_compressed), plus .npy variants in float64 and uint8, and broken files.

usage: write_numpy_data.py DIR"""
import os
import sys

import numpy as np


def main(directory):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(7)
    # Small integers over 8: exact in float32, float64 and as CSV text; uint8 copies hold value × 8.
    x_train = (rng.integers(0, 64, size=(96, 2, 3)) / 8).astype(np.float32)
    y_train = rng.integers(0, 3, size=96).astype(np.int64)
    x_test = (rng.integers(0, 64, size=(32, 2, 3)) / 8).astype(np.float32)
    y_test = rng.integers(0, 3, size=32).astype(np.int64)
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        flat = x.reshape(len(x), -1)
        with open(f"{directory}/{name}.csv", "w") as f:
            f.write(",".join([f"f{i}" for i in range(flat.shape[1])] + ["label"]) + "\n")
            for row, label in zip(flat, y):
                f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    np.save(f"{directory}/x_train.npy", x_train.reshape(96, 6))
    np.save(f"{directory}/y_train.npy", y_train)
    np.save(f"{directory}/x_test.npy", x_test.reshape(32, 6))
    np.save(f"{directory}/y_test.npy", y_test)
    np.savez(f"{directory}/data.npz", x_train=x_train.reshape(96, 6), y_train=y_train, x_test=x_test.reshape(32, 6), y_test=y_test)
    np.savez_compressed(f"{directory}/compressed.npz", x_train=x_train.reshape(96, 6), y_train=y_train.astype(np.uint8),
                        x_test=x_test.reshape(32, 6), y_test=y_test.astype(np.int32))
    np.save(f"{directory}/x_train64.npy", x_train.reshape(96, 6).astype(np.float64))
    np.save(f"{directory}/x_train_big_endian.npy", x_train.reshape(96, 6).astype(">f4"))
    np.save(f"{directory}/x_train_u8.npy", (x_train.reshape(96, 6) * 8).astype(np.uint8))
    np.save(f"{directory}/x_test_u8.npy", (x_test.reshape(32, 6) * 8).astype(np.uint8))
    # Broken ones.
    np.save(f"{directory}/fortran.npy", np.asfortranarray(x_train.reshape(96, 6)))
    np.save(f"{directory}/complex.npy", np.zeros((96, 6), dtype=np.complex64))
    np.save(f"{directory}/y_train_short.npy", y_train[:90])
    data = open(f"{directory}/x_train.npy", "rb").read()
    open(f"{directory}/truncated.npy", "wb").write(data[: len(data) - 40])
    compressed = open(f"{directory}/compressed.npz", "rb").read()
    open(f"{directory}/truncated.npz", "wb").write(compressed[: len(compressed) // 2])


if __name__ == "__main__":
    main(sys.argv[1])
