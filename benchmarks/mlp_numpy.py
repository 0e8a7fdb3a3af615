"""NumPy reference for the default MLP step (784-256-128-10, ReLU, He init, Adam 1e-3,
global clip-norm 1.0, cross-entropy), on Fashion-MNIST batches of 128, single-threaded BLAS.
Prints samples/s of training steps (data gather included, evaluation excluded)."""
import gzip, math, os, sys, time
import numpy as np

def load(root="/usr/share/datasets/fashion-mnist"):
    with gzip.open(f"{root}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32)
    with gzip.open(f"{root}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return (x - x.mean()) / x.std(), y

def main(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 400, batch=128):
    x, y = load()
    rng = np.random.default_rng(1)
    sizes = [784, 256, 128, 10]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6 / fan_in)
        params += [rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32), np.zeros(fan_out, np.float32)]
    m = [np.zeros_like(p) for p in params]; v = [np.zeros_like(p) for p in params]
    base_lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    horizon = 10 * -(-len(x) // batch)  # the default run's cosine schedule: 10 epochs
    order = rng.permutation(len(x))
    start = None
    for t in range(1, steps + 1):
        if t == 21: start = time.perf_counter()  # warm-up excluded
        idx = order[((t - 1) * batch) % (len(x) - batch):][:batch]
        xb, yb = x[idx], y[idx]
        w1, b1_, w2, b2_, w3, b3 = params
        h1p = xb @ w1.T + b1_; h1 = np.maximum(h1p, 0)
        h2p = h1 @ w2.T + b2_; h2 = np.maximum(h2p, 0)
        logits = h2 @ w3.T + b3
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits); p /= p.sum(axis=1, keepdims=True)
        g = p; g[np.arange(batch), yb] -= 1; g /= batch
        gw3 = g.T @ h2; gb3 = g.sum(0)
        gh2 = (g @ w3) * (h2p > 0)
        gw2 = gh2.T @ h1; gb2 = gh2.sum(0)
        gh1 = (gh2 @ w2) * (h1p > 0)
        gw1 = gh1.T @ xb; gb1 = gh1.sum(0)
        grads = [gw1, gb1, gw2, gb2, gw3, gb3]
        norm = np.sqrt(sum(float((gr * gr).sum()) for gr in grads))
        c = 1.0 / (norm + 1e-6)
        if c < 1: grads = [gr * c for gr in grads]
        lr = base_lr * (1 + math.cos(math.pi * min(t - 1, horizon) / horizon)) / 2
        for i, gr in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * gr
            v[i] = b2 * v[i] + (1 - b2) * gr * gr
            params[i] -= (lr / (1 - b1 ** t)) * m[i] / (np.sqrt(v[i]) / np.sqrt(1 - b2 ** t) + eps)
    elapsed = time.perf_counter() - start
    print(f"{(steps - 20) * batch / elapsed:.1f}")

if __name__ == "__main__":
    main()
