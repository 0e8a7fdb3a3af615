"""PyTorch DDP (gloo, CPU) reference for the default Chorus MLP across test hosts: 784-256-128-10,
ReLU, Adam 1e-3, global clip-norm 1.0, cross-entropy, Fashion-MNIST batches of 128 per rank, one
thread per rank. Rank 0 prints samples/s over every rank (warm-up steps excluded) as
`samples_per_s N`. Started once per rank by benchmarks/hosts-1gbit.sh:
    python ddp_mlp.py RANK WORLD MASTER_ADDR MASTER_PORT STEPS"""
import gzip, os, sys, time
import numpy as np
import torch
import torch.distributed as dist
from torch import nn

def load(root="/usr/share/datasets/fashion-mnist"):
    with gzip.open(f"{root}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32)
    with gzip.open(f"{root}/train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy((x - x.mean()) / x.std()), torch.from_numpy(y)

def main():
    rank, world, addr, port, steps = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    x, y = load()
    batch, warmup = 128, 20
    generator = torch.Generator().manual_seed(rank)
    order = torch.randperm(len(x), generator=generator)
    start = None
    for step in range(steps):
        if step == warmup:
            dist.barrier(); start = time.perf_counter()
        index = order[(step * batch) % (len(x) - batch):][:batch]
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(ddp(x[index]), y[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ddp.parameters(), 1.0)
        optimizer.step()
    dist.barrier()
    elapsed = time.perf_counter() - start
    if rank == 0:
        print(f"samples_per_s {(steps - warmup) * batch * world / elapsed:.0f}", flush=True)
    dist.destroy_process_group()

if __name__ == "__main__":
    main()
