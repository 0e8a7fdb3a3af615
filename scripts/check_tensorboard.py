#!/usr/bin/env python3
"""Reads a run's OUT/tensorboard with TensorBoard's own EventAccumulator and checks it against
OUT/metrics.jsonl value for value (to float32, the precision of a TensorBoard scalar).

usage: check_tensorboard.py OUT   — exits 1 naming the first difference; prints a summary."""
import json
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(out):
    acc = EventAccumulator(out + "/tensorboard", size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    rows = [json.loads(line) for line in open(out + "/metrics.jsonl") if line.strip()]
    report = json.load(open(out + "/report.json"))
    fields = {"loss": "loss", "accuracy": "accuracy", "learning_rate": "lr", "grad_norm": "grad_norm", "samples_per_s": "samples_per_s"}
    for tag, field in fields.items():
        if tag not in tags["scalars"]:
            sys.exit(f"tag {tag} missing (tags: {sorted(tags['scalars'])})")
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        if steps != [r["step"] for r in rows]:
            sys.exit(f"{tag}: steps {steps[:5]}… ({len(steps)}) differ from metrics.jsonl's ({len(rows)})")
        for event, row in zip(events, rows):
            expected = row.get(field)
            if expected is None:
                continue
            if not math.isclose(event.value, expected, rel_tol=1e-6, abs_tol=1e-30):
                sys.exit(f"{tag} at step {event.step}: {event.value} in the events, {expected} in metrics.jsonl")
    for name in rows[-1].get("grad_norms", {}):
        if f"grad_norm/{name}" not in tags["scalars"]:
            sys.exit(f"per-layer tag grad_norm/{name} missing")
    accuracy = acc.Scalars("test_accuracy")
    if not accuracy or not math.isclose(accuracy[-1].value, report["test_accuracy"], rel_tol=1e-6):
        sys.exit(f"test_accuracy {[(e.step, e.value) for e in accuracy]} does not end at report.json's {report['test_accuracy']}")
    if "config" not in tags["tensors"]:
        sys.exit(f"no config text (tensors: {tags['tensors']})")
    alerts = len(acc.Tensors("collapse")) if "collapse" in tags["tensors"] else 0
    print(f"ok: {len(rows)} steps, {len(tags['scalars'])} scalar tags, {len(accuracy)} test_accuracy points, {alerts} collapse alerts")


if __name__ == "__main__":
    main(sys.argv[1])
