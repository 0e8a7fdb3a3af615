#!/usr/bin/env python3
"""Summarizes what benchmarks/device-scaling.sh left in its output directory (the files the
device run brings back): the weak-scaling table with efficiency against 1 worker and where a
step's time goes, then stress throughput against raw libzmq and step latency by worker count.

    python3 benchmarks/device-summary.py DIR
"""
import json
import os
import sys

d = sys.argv[1]


def load(name):
    path = os.path.join(d, name)
    return json.load(open(path)) if os.path.exists(path) else None


print(open(os.path.join(d, "nproc")).read().strip().splitlines()[0], "cores")
print(f"{'workers':<16} {'samples/s':>10} {'eff':>6} {'sockMB/st':>9} {'shmMB/st':>9} {'compute':>8} {'wait':>7} {'decode':>7} {'agg':>6} {'update':>7}")
base = None
for name in ["0", "1", "2", "4", "8", "12", "16", "16-monitor", "16-no-shm", "16-plain-16", "16-agents-2x8", "16-agents-4x4"]:
    r = load(f"scaling-{name}.json")
    if r is None:
        print(f"{name:<16} (no report)")
        continue
    n = int(name.split("-")[0])
    rate = r["samples_per_s"]
    if name == "1":
        base = rate
    c = r.get("cluster", {})
    steps = max(r["steps"], 1)
    wire = (c.get("bytes_sent", 0) + c.get("bytes_received", 0)) / steps / 1e6
    shm = (c.get("shared_memory_bytes", 0) + c.get("shared_memory_gradient_bytes", 0)) / steps / 1e6
    t = r.get("timing_ms", {})
    eff = f"{100 * rate / (n * base):.0f}%" if base and n >= 2 else ""
    ms = lambda k: f"{t[k]:.2f}" if k in t else "-"
    label = "in-process" if name == "0" else name
    print(f"{label:<16} {rate:10.0f} {eff:>6} {wire:9.2f} {shm:9.2f} {ms('worker_compute_per_shard'):>8} "
          f"{ms('waiting_on_workers_and_wire'):>7} {ms('gradient_decode'):>7} {ms('aggregation'):>6} {r.get('update_ms_per_step', 0):7.2f}")
print()
for params in ["262144", "2621440"]:
    for path, suffix in [("shm", ""), ("socket", "-socket")]:
        s = load(f"stress-throughput-{params}{suffix}.json")
        if s:
            print(f"stress {params} params, {s['workers']} workers, {path}: {s['status']}, {s['throughput_gbps']:.2f} GB/s vs raw libzmq "
                  f"{s.get('raw_zmq_gbps', 0):.2f} GB/s, ratio {s.get('ratio_to_raw', 0):.2f}")
for workers in ["2", "4", "8", "16"]:
    s = load(f"stress-latency-{workers}.json")
    if s:
        l = s["step_latency_ms"]
        print(f"stress latency {workers:>2} workers, 1M params: {s['status']}, p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms, "
              f"peak RSS {s['peak_rss_bytes'] / 2**20:.0f} MiB")
