"""Cost of N small models trained at once with `torch.func` (stack_module_state + vmap) relative to one.

`trainlab.search.train_stacked` trains N copies of an MLP, each with its own learning rate, on the same
mini-batches in one pass. This script times one epoch (mnist-sized inputs, random data) for 1 model, for
N stacked models and for the N models one after the other, and prints the ratios. Target on a GPU: 16
stacked small MLPs cost at most 2x one model. On a CPU the figure depends on the model size: a tiny
model is dominated by per-operation overhead (stacking shares it), a larger one by arithmetic (stacking
then costs about N x).

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stacked_models.py [--device cuda] [--n 16]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import trainlab as tl
from trainlab.search import train_stacked


def epoch_seconds(models, lrs, train, batch_size, device, repeat):
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_stacked(models, lrs, train, epochs=1, batch_size=batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--n", type=int, default=16, help="number of stacked models")
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    device = tl.get_device(args.device)
    gen = torch.Generator().manual_seed(0)
    train = tl.Split(torch.randn(args.examples, 784, generator=gen),
                     torch.randint(0, 10, (args.examples,), generator=gen)).to(device)
    lrs = list(np.logspace(-3, -1, args.n))
    print(f"device={device}  threads={torch.get_num_threads()}  N={args.n}  examples={args.examples}  "
          f"batch={args.batch_size}")
    print(f"{'hidden':>7} {'1 model (s)':>12} {'N stacked (s)':>14} {'N one by one (s)':>17} "
          f"{'stacked / 1':>12} {'one by one / stacked':>21}")
    for hidden in args.hidden:
        tl.seed_everything(0)
        models = [tl.mlp(784, [hidden], 10).to(device) for _ in range(args.n)]
        train_stacked(models[:1], lrs[:1], train, epochs=1, batch_size=args.batch_size)  # warm-up
        one = epoch_seconds(models[:1], lrs[:1], train, args.batch_size, device, args.repeat)
        many = epoch_seconds(models, lrs, train, args.batch_size, device, args.repeat)
        loop = sum(epoch_seconds([m], [lr], train, args.batch_size, device, 1)
                   for m, lr in zip(models, lrs, strict=True))
        print(f"{hidden:7d} {one:12.4f} {many:14.4f} {loop:17.4f} {many / one:11.2f}x {loop / many:20.2f}x")
    if device.type == "cuda":
        print(f"target on a GPU: {args.n} stacked <= 2x one model")


if __name__ == "__main__":
    main()
