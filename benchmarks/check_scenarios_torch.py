"""Checks scenarios/ with an independent implementation: PyTorch (CPU, one thread) trains each
scenario's network with its recipe, and the script says whether the run really fails (faulty) or
really trains (healthy), and for a mid-run fault (a `<name>.onset` file) that it trained before
the onset and broke after it.

    python benchmarks/check_scenarios_torch.py [PATTERN]      (from the repository root)

Covers the layer types dense, conv2d, maxpool2d, flatten, activation, dropout, batchnorm; cross_entropy, and bce/mse
with one output unit (on class indices they fail when the last 10 steps' training accuracy is below 0.5); sgd/adam/adamw; the step,
cosine and warmup schedules; Fashion-MNIST (standardized) and the CSV data sets. A scenario
outside that (residual blocks, replica faults, …) is listed as skipped.

Verdicts, with chance = log(classes):
  healthy  trains:  mean loss of the last 10 steps < 0.9 × chance, or < 0.9 × the first 10 steps'
                    (a slow start)
  faulty   fails:   the last 10 steps' mean loss ≥ 0.9 × chance (bottleneck: 0.5 × chance, the
                    monitor's level; a softmax before cross_entropy: its floor log(1 + (C − 1)/e)),
                    or non-finite; constant_labels: the labels hold one value
  mid-run  the 10 steps before the onset < 0.9 × chance, and the run fails after it
The init, the data order and the dropout masks are PyTorch's, not Chorus's: the check is that the
recipe itself is broken or healthy, not that the bits agree.
"""
import csv
import glob
import gzip
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

torch.set_num_threads(1)


def fashion(root="/usr/share/datasets/fashion-mnist"):
    with gzip.open(f"{root}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32)
    with gzip.open(f"{root}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def load(config, directory):
    data = config.get("data", {})
    if data.get("format") == "csv":
        rows = list(csv.reader(open(os.path.join(directory, data["train"]))))[1:]
        x = np.array([[float(v) for v in r[:-1]] for r in rows], np.float32)
        y = np.array([int(float(r[-1])) for r in rows], np.int64)
    else:
        x, y = fashion()
    normalize = data.get("normalize", "standardize")
    if normalize == "standardize":
        x = (x - x.mean()) / x.std()
    elif normalize == "scale":
        x = x / 255.0
    return torch.from_numpy(x), torch.from_numpy(y)


def activation(name):
    if isinstance(name, dict):
        kind = name.get("type", name.get("name"))
        if kind == "leaky_relu":
            return nn.LeakyReLU(name.get("alpha", 0.01))
        name = kind
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "gelu": nn.GELU(), "softmax": nn.Softmax(dim=1),
            "linear": nn.Identity(), None: nn.Identity()}[name]


def build(model):
    shape = list(model["input"])
    layers = []
    for spec in model["layers"]:
        kind = spec["type"]
        if kind == "dense":
            inputs = int(np.prod(shape))
            if len(shape) > 1:
                layers.append(nn.Flatten())
            linear = nn.Linear(inputs, spec["units"], bias=spec.get("use_bias", True))
            init(linear, spec)
            layers += [linear, activation(spec.get("activation"))]
            shape = [spec["units"]]
        elif kind == "conv2d":
            same = spec.get("padding") == "same"
            conv = nn.Conv2d(shape[0], spec["filters"], spec["kernel"], padding="same" if same else 0,
                             bias=spec.get("use_bias", True))
            init(conv, spec)
            layers += [conv, activation(spec.get("activation"))]
            k = spec["kernel"]
            shape = [spec["filters"], shape[1] if same else shape[1] - k + 1, shape[2] if same else shape[2] - k + 1]
        elif kind == "maxpool2d":
            s = spec["size"]
            layers.append(nn.MaxPool2d(s))
            shape = [shape[0], shape[1] // s, shape[2] // s]
        elif kind == "flatten":
            layers.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif kind == "activation":
            layers.append(activation(spec["activation"]))
        elif kind == "dropout":
            layers.append(nn.Dropout(spec["rate"]))
        elif kind == "batchnorm":
            layers.append(nn.BatchNorm1d(shape[0]) if len(shape) == 1 else nn.BatchNorm2d(shape[0]))
        else:
            return None
    return nn.Sequential(*layers)


def init(module, spec):
    name = spec.get("init")
    if name is None:  # Chorus's default: He for the ReLU family, Xavier otherwise
        act = spec.get("activation")
        act = act.get("type", act.get("name")) if isinstance(act, dict) else act
        name = "he_uniform" if act in ("relu", "leaky_relu", "prelu") else "xavier_uniform"
    options = name if isinstance(name, dict) else {}
    name = options.get("name", options.get("type")) if options else name
    w = module.weight
    if name == "zeros":
        nn.init.zeros_(w)
    elif name == "ones":
        nn.init.ones_(w)
    elif name == "constant":
        nn.init.constant_(w, float(options.get("value", 0.0)))
    elif name == "uniform":
        nn.init.uniform_(w, -options.get("limit", 0.05), options.get("limit", 0.05))
    elif name == "normal":
        nn.init.normal_(w, 0.0, options.get("std", 0.05))
    elif name in ("xavier_uniform", "glorot_uniform"):
        nn.init.xavier_uniform_(w)
    elif name in ("xavier_normal", "glorot_normal"):
        nn.init.xavier_normal_(w)
    elif name in ("he_uniform", "kaiming_uniform"):
        nn.init.kaiming_uniform_(w, nonlinearity="relu")
    elif name in ("he_normal", "kaiming_normal"):
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    elif name == "lecun_normal":
        nn.init.normal_(w, 0.0, 1 / math.sqrt(w[0].numel()))
    if module.bias is not None:  # Chorus's biases start at bias_init, 0 by default (PyTorch's are random)
        nn.init.constant_(module.bias, float(spec.get("bias_init", 0.0)))


def learning_rate(schedule, base, t, total):
    kind = (schedule or {}).get("type", "constant") if isinstance(schedule, dict) else (schedule or "constant")
    if kind == "constant":
        return base
    if kind == "step":
        return base * schedule.get("gamma", 0.1) ** (t // schedule["step_size"])
    if kind == "cosine":
        horizon = schedule.get("total_steps") or total
        low = schedule.get("min_lr", 0.0)
        return low + (base - low) * 0.5 * (1 + math.cos(math.pi * min(t, horizon) / horizon))
    if kind == "warmup":
        w = schedule["warmup_steps"]
        if t < w:
            return base * (t + 1) / w
        return learning_rate(schedule.get("then", "constant"), base, t - w, max(1, total - w))
    raise ValueError(kind)


def run(path):
    config = json.load(open(path))
    loss_kind = config.get("loss", "cross_entropy")
    if loss_kind not in ("cross_entropy", "bce", "mse"):
        return None
    if loss_kind != "cross_entropy" and config["model"]["layers"][-1].get("units") != 1:
        return None  # one-hot bce/mse targets: not covered here
    net = build(config["model"])
    if net is None:
        return None
    torch.manual_seed(config["training"].get("seed", 1))
    x, y = load(config, os.path.dirname(path))
    x = x.reshape([-1] + list(config["model"]["input"]))
    opt_config = config["optimizer"]
    name, base = opt_config["name"], opt_config.get("lr", 0.001 if opt_config["name"] != "sgd" else 0.01)
    if name == "sgd":
        optimizer = torch.optim.SGD(net.parameters(), lr=base, momentum=opt_config.get("momentum", 0))
    elif name == "adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=base)
    elif name == "adamw":
        optimizer = torch.optim.AdamW(net.parameters(), lr=base, weight_decay=opt_config.get("weight_decay", 0.01))
    else:
        return None
    batch = config["training"].get("batch_size", 128)
    per_epoch = math.ceil(len(x) / batch)
    steps = min(config["training"].get("max_steps", 10**9), config["training"].get("epochs", 1) * per_epoch)
    generator = torch.Generator().manual_seed(1)
    order, losses, accuracies = torch.randperm(len(x), generator=generator), [], []
    for t in range(steps):
        if t % per_epoch == 0 and t > 0:
            order = torch.randperm(len(x), generator=generator)
        index = order[(t % per_epoch) * batch:][:batch]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(opt_config.get("schedule"), base, t, steps)
        optimizer.zero_grad(set_to_none=True)
        out = net(x[index])
        if loss_kind == "cross_entropy":
            loss, predicted = nn.functional.cross_entropy(out, y[index]), out.argmax(1)
        elif loss_kind == "bce":
            # One logit against the label itself, as Chorus's bce does (PyTorch does not check the targets' range).
            loss = nn.functional.binary_cross_entropy_with_logits(out[:, 0], y[index].float())
            predicted = (out[:, 0] > 0).long()
        else:
            loss, predicted = nn.functional.mse_loss(out[:, 0], y[index].float()), out[:, 0].round().long()
        accuracies.append((predicted == y[index]).float().mean().item())
        loss.backward()
        if opt_config.get("clip_norm"):
            torch.nn.utils.clip_grad_norm_(net.parameters(), opt_config["clip_norm"])
        optimizer.step()
        losses.append(loss.item())
    return losses, math.log(max(int(y.max()) + 1, 2)), len(set(y.tolist())), accuracies, loss_kind


def mean(values):
    return float("nan") if any(not math.isfinite(v) for v in values) else sum(values) / len(values)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    agreed = disagreed = skipped = 0
    for path in sorted(glob.glob("scenarios/*.json")):
        name = os.path.basename(path)[:-5]
        if pattern not in name:
            continue
        flags = f"scenarios/{name}.flags"
        result = None if os.path.exists(flags) and "--fault" in open(flags).read() else run(path)
        if result is None:
            print(f"{name:50s} skipped (an injected fault, or outside this script's layer/loss/optimizer set)")
            skipped += 1
            continue
        losses, chance, distinct, accuracies, loss_kind = result
        tail = mean(losses[-10:])
        cause = name.split("--")[0]
        # A width-1 layer still learns a little: failing is the monitor's bottleneck level, half of chance.
        level = 0.5 if cause == "bottleneck" else 0.9
        if "softmax-before" in name:
            # A softmax before cross_entropy bounds the loss below by log(1 + (C − 1)/e): stuck above it.
            level = math.log(1 + (math.exp(chance) - 1) / math.e) / chance
        failing = not math.isfinite(tail) or tail >= level * chance
        if loss_kind != "cross_entropy" and distinct > 2:
            # bce/mse on class indices: the loss is not a cross-entropy against chance (bce's
            # runs to −∞ on targets above 1); failing is not predicting the classes: training
            # accuracy of the last 10 steps below 0.5.
            failing = not math.isfinite(tail) or mean(accuracies[-10:]) < 0.5
        onset_path = f"scenarios/{name}.onset"
        if cause == "constant_labels":
            ok, what = distinct == 1, f"the training labels hold {distinct} distinct value(s)"
        elif name.startswith("healthy--"):
            # Trains: below 0.9 × chance, or (a slow start) at least 10 % below where it began.
            head = mean(losses[:10])
            ok = not failing or (math.isfinite(tail) and tail < 0.9 * head)
            what = f"trains: last-10 loss {tail:.3f} (first-10 {head:.3f}, 0.9×chance {0.9 * chance:.3f})"
        elif os.path.exists(onset_path):
            onset = int(open(onset_path).read())
            before = mean(losses[max(0, onset - 11):onset - 1])
            ok = before < 0.9 * chance and failing
            what = f"before step {onset} loss {before:.3f}, last-10 {tail:.3f} (0.9×chance {0.9 * chance:.3f})"
        else:
            ok, what = failing, f"fails: last-10 loss {tail:.3f} vs {level}×chance {level * chance:.3f}, accuracy {mean(accuracies[-10:]):.3f}"
        print(f"{name:50s} {'AGREES' if ok else 'DISAGREES'}: {what}")
        agreed, disagreed = agreed + ok, disagreed + (not ok)
    print(f"{agreed} agree, {disagreed} disagree, {skipped} skipped")


if __name__ == "__main__":
    main()
