#!/usr/bin/env python3
"""Load a safetensors file with the reference `safetensors` package and check its tensors.

Usage: check_safetensors.py FILE [--expect NAME:SHAPE ...]

Prints one line per tensor, "NAME DTYPE SHAPE" (shape as comma-separated dimensions,
empty for a scalar), then the metadata as "metadata KEY=VALUE". SHAPE in --expect is
written the same way, e.g. layers.0.weight:256,784 or step: for a scalar. Exits 1 when an
expected tensor is missing or has another shape, 2 when the file cannot be loaded.
Needs `pip install safetensors numpy`.
"""
import argparse
import json
import struct
import sys

from safetensors.numpy import load_file


def parse_expectation(text):
    name, sep, shape = text.rpartition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:SHAPE (e.g. layers.0.weight:256,784), got {text!r}")
    try:
        dims = tuple(int(d) for d in shape.split(",") if d.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape of {name!r} is not comma-separated integers: {shape!r}")
    return name, dims


def read_metadata(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)).get("__metadata__", {}) or {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--expect", action="append", default=[], type=parse_expectation, metavar="NAME:SHAPE")
    args = parser.parse_args()

    try:
        tensors = load_file(args.file)
        metadata = read_metadata(args.file)
    except Exception as error:  # the reference loader's own message is the useful part
        print(f"{args.file}: cannot load: {error}", file=sys.stderr)
        return 2

    for name, array in tensors.items():
        print(f"{name} {array.dtype} {','.join(str(d) for d in array.shape)}")
    for key in sorted(metadata):
        print(f"metadata {key}={metadata[key]}")

    failed = False
    for name, shape in args.expect:
        if name not in tensors:
            print(f"{args.file}: expected tensor {name!r} is missing", file=sys.stderr)
            failed = True
        elif tuple(tensors[name].shape) != shape:
            print(f"{args.file}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {shape}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
