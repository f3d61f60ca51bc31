"""Time to draw one training batch, features in memory against a disk store.

The classifiers draw every batch (random crop of each row's recording,
SpecAugment masks, mixup) in the data loader's ``collate_fn`` before the
step trains on it.  This prints the milliseconds per batch of 64 clips at
the paper's 256 x 51 from random features of 320 ten-second recordings,
held in memory and in a :class:`~skasc._disk_store.DiskStore` file (in the
page cache), to compare with a training step (~230-320 ms at this size on
2 cores, ``benchmarks/bench_training.py``).

Run::

    python benchmarks/bench_draw.py
"""

import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from skasc import FeatureSet, RandomCrop, SpecAugment  # noqa: E402
from skasc._disk_store import DiskStore  # noqa: E402
from skasc._training import BatchDrawer  # noqa: E402


def main(n_rec=320, frames=501, bands=256, width=51, batch=64, repeat=50):
    torch.set_num_threads(2)
    store = np.random.default_rng(0).normal(size=(n_rec * frames, bands)).astype(np.float32)
    start = np.repeat(np.arange(n_rec) * frames, 10)
    piece = np.tile(np.arange(10), n_rec)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "features.float32")
        store.tofile(path)
        for name, s in (("memory", store), ("disk store", DiskStore(path, len(store), bands, key="bench"))):
            X = SpecAugment().fit_transform(RandomCrop().fit_transform(
                FeatureSet(s, start, start + frames, start + piece * (width - 1), width)))
            drawer = BatchDrawer(X, 10, mixup_alpha=0.3, seed=0)
            items = [(i, 0) for i in range(batch)]
            for _ in range(3):
                drawer(items)
            t = time.perf_counter()
            for _ in range(repeat):
                drawer(items)
            print(f"{name:10s} {1000 * (time.perf_counter() - t) / repeat:6.2f} ms per batch of {batch} "
                  f"at {bands}x{width}")


if __name__ == "__main__":
    main()
