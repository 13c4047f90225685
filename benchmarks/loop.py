"""Samples/second of `trainlab.fit` (device-side batches) vs plain DataLoader loops.

Same MLP, same data (mnist5k), same optimizer and batch size; every loop does forward, loss,
backward and step on every batch. Two baselines, because "a plain DataLoader loop" means two
different things in practice:

* tutorial: a torchvision-style dataset that turns each image into a tensor with
  `transforms.ToTensor()` + `Normalize` per item (what most tutorials and students write);
* TensorDataset: the data already preprocessed as tensors, batches collated by the DataLoader.

Run: `.venv/bin/python benchmarks/loop.py [--device cuda] [--batch-sizes 32 64 256]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms

import trainlab as tl


class TutorialMNIST(Dataset):
    """Like torchvision.datasets.MNIST: uint8 images, converted one by one by a transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i], mode="L")).flatten(), int(self.labels[i])


def tutorial_epochs(model, optimizer, x, y, batch_size, epochs, device) -> float:
    images = (x.cpu().view(-1, 28, 28) * 255).clamp(0, 255).to(torch.uint8).numpy()
    return _loader_epochs(TutorialMNIST(images, y.cpu().numpy()), model, optimizer, batch_size, epochs, device)


def tensordataset_epochs(model, optimizer, x, y, batch_size, epochs, device) -> float:
    return _loader_epochs(TensorDataset(x.cpu(), y.cpu()), model, optimizer, batch_size, epochs, device)


def _loader_epochs(dataset, model, optimizer, batch_size, epochs, device) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(dataset) / (time.perf_counter() - start)


def fit_epochs(model, optimizer, x, y, batch_size, epochs, device) -> float:
    start = time.perf_counter()
    tl.fit(model, optimizer, (x, y), epochs=epochs, batch_size=batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(y) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 256])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()

    device = tl.get_device(args.device)
    data = tl.load_dataset("mnist5k", device=device, flatten=True)
    x, y = data.train.x, data.train.y
    print(f"device={device.type}  torch={torch.__version__}  threads={torch.get_num_threads()}  "
          f"data={tuple(x.shape)}  MLP 784-{args.hidden}-10  SGD(momentum=0.9)  median of {args.repeats} runs")
    loops = {"DataLoader (tutorial)": tutorial_epochs, "DataLoader (TensorDataset)": tensordataset_epochs,
             "trainlab.fit": fit_epochs}
    print(f"{'batch':>6} " + " ".join(f"{name:>27}" for name in loops) + "   fit/tutorial  fit/TensorDataset")
    for batch_size in args.batch_sizes:
        rates = {}
        for name, loop in loops.items():
            samples = []
            for repeat in range(args.repeats + 1):  # the first run warms up (allocator, kernels)
                tl.seed_everything(repeat)
                model = tl.mlp(784, [args.hidden], 10).to(device)
                optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                rate = loop(model, optimizer, x, y, batch_size, args.epochs, device)
                if repeat:
                    samples.append(rate)
            rates[name] = statistics.median(samples)
        cells = " ".join(f"{rates[name]:>19,.0f} samples/s" for name in loops)
        print(f"{batch_size:>6} {cells}   {rates['trainlab.fit'] / rates['DataLoader (tutorial)']:>11.1f}x"
              f"  {rates['trainlab.fit'] / rates['DataLoader (TensorDataset)']:>16.1f}x")


if __name__ == "__main__":
    main()
