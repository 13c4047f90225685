"""Wall-clock timing that is fair on a GPU and robust on a busy machine (one helper for every benchmark)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def device_sync(device: torch.device | str) -> Callable[[], None]:
    """What to call before reading the clock: wait for queued CUDA kernels (no-op elsewhere)."""
    return torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)


def best_time(fn: Callable[[], object], sync: Callable[[], None], min_time: float, warmup: int = 2) -> float:
    """Seconds of the fastest call of ``fn`` after ``warmup`` calls, repeating (at least 3 times) until
    ``min_time`` seconds have passed. The fastest repetition ignores moments when another process took
    the CPU."""
    for _ in range(warmup):
        fn()
    sync()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)
