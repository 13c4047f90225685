"""Images/second of data augmentation: per-image CPU transforms in a DataLoader vs batched on the device.

Prints, for each batch size, the rate of

* a ``DataLoader`` whose dataset applies ``torchvision.transforms.v2`` (random crop with padding 2 and a
  rotation of up to 10°) to one image at a time on the CPU, for each number of worker processes, including
  the copy of the batch to the device;
* the same augmentation batched on the device (``trainlab.augment.Augment``), crop alone and crop + rotation;
* a training step (forward, backward, SGD update) of the chapter's MLP and of ``trainlab.small_cnn``;

and the cost of the batched augmentation as a fraction of each training step (below 100 %: the
augmentation is not the bottleneck). Chapter "Data augmentation" shows the same figures for B = 128.

Run: ``.venv/bin/python benchmarks/augment.py [--device cuda] [--batch-sizes 64 128 512] [--workers 0 2]``.
"""

from __future__ import annotations

import argparse

import torch
from torchvision.transforms import v2

import trainlab as tl
from trainlab.augment import Augment
from trainlab.pipeline import augment_rate, loader_rate, step_rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker processes")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per timed measurement")
    args = parser.parse_args(argv)

    device = tl.get_device(args.device)
    data = tl.load_dataset(args.dataset, device=device)
    black = (-data.mean / data.std).tolist()
    size = list(data.input_shape[-2:])
    per_image = v2.Compose([
        v2.RandomCrop(size, padding=2, fill=black),
        v2.RandomRotation(10, interpolation=v2.InterpolationMode.BILINEAR, fill=black),
    ])
    crop, policy = Augment(crop=2, fill=black), Augment(crop=2, degrees=10, fill=black)
    mlp = tl.mlp(data.input_dim, [128], data.num_classes)
    cnn = tl.small_cnn(data.input_shape[0], data.num_classes, image_size=size[0])
    x, y, t = data.train.x, data.train.y, args.min_time
    print(f"{data.name} on {device} (torch {torch.__version__}, {torch.get_num_threads()} threads): images/s")
    for b in args.batch_sizes:
        rates = {f"DataLoader per-image, {k} workers": loader_rate(x, y, per_image, b, device=device, num_workers=k)
                 for k in args.workers}
        rates["device: crop"] = augment_rate(crop, x, b, min_time=t)
        rates["device: crop + rotation"] = augment_rate(policy, x, b, min_time=t)
        rates["step: MLP [128]"] = step_rate(mlp, x, data.num_classes, b, min_time=t)
        rates["step: small CNN"] = step_rate(cnn, x, data.num_classes, b, min_time=t)
        print(f"\nB = {b}")
        for name, rate in rates.items():
            print(f"  {name:34s} {rate:14,.0f}")
        aug = rates["device: crop + rotation"]
        for model in ("MLP [128]", "small CNN"):
            print(f"  crop + rotation as a fraction of a {model} step: {rates['step: ' + model] / aug:6.1%}")
        best_loader = max(rates[f"DataLoader per-image, {k} workers"] for k in args.workers)
        print(f"  device crop + rotation vs best DataLoader: {aug / best_loader:6.1f}x")


if __name__ == "__main__":
    main()
