"""Helpers shared by the benchmark scripts: data, features, threads, formatting.

Not part of the library; imported by the scripts in this folder as
``from common import ...`` (the scripts put their own folder on
``sys.path``).
"""

from __future__ import annotations

import os
import pathlib
import time
from contextlib import contextmanager

import numpy as np

#: Where generated data and feature caches go unless --work-dir says otherwise.
DEFAULT_WORK_DIR = pathlib.Path(os.environ.get("SKASC_CACHE_DIR", "~/.cache/skasc")).expanduser()

#: The replica the benchmarks generate when no --data-root is given: 10 scenes,
#: 4 cities x 3 locations x 1 segment each; about 8 locations per scene train,
#: the others evaluate (unseen locations, as in the real split).  2,500 clips
#: of 1 s (1,300 train / 1,200 evaluate), about 330 MB, written in ~15 s.
REPLICA = dict(n_cities=4, n_locations=3, n_segments=1, random_state=0)

#: Feature front ends.  "paper": the seed paper's 256 mel bands x 51 frames
#: (n_fft 4096, Hamming 3528, hop 882) with SpecAugment masks up to 10 wide.
#: "small": 64 bands x 26 frames (window and hop 40 ms), about 8x cheaper,
#: with the masks scaled down in proportion.
FEATURES = {
    "small": dict(
        logmel=dict(n_mels=64, n_fft=2048, win_length=1764, hop_length=1764),
        specaug=dict(freq_mask_width=4, time_mask_width=3),
    ),
    "paper": dict(
        logmel=dict(),
        specaug=dict(freq_mask_width=10, time_mask_width=10),
    ),
}


def set_threads(n):
    """Torch intra-op threads for this process (1 inside parallel workers)."""
    import torch

    torch.set_num_threads(max(1, int(n)))


def replica_root(data_root=None, work_dir=None, *, log=print):
    """The data folder: ``data_root`` as given, or the cached replica (made if missing)."""
    if data_root is not None:
        return pathlib.Path(data_root).expanduser().resolve()
    from skasc.datasets import make_tau22

    root = pathlib.Path(work_dir or DEFAULT_WORK_DIR).expanduser() / "tau22-replica"
    complete = (root / "skasc_replica.json").is_file()
    if not complete:
        log(f"writing the TAU22 replica to {root} (once) ...")
    return make_tau22(root, **REPLICA)


def front_end(features="small", cache_dir=None, n_jobs=None):
    """Reassembler -> LogMel (cached) -> RandomCrop -> SpecAugment, as a Pipeline."""
    from sklearn.pipeline import Pipeline

    from skasc import LogMel, RandomCrop, Reassembler, SpecAugment

    if features not in FEATURES:
        raise ValueError(f"features must be one of {sorted(FEATURES)}, got {features!r}")
    spec = FEATURES[features]
    return Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(**spec["logmel"], memory=None if cache_dir is None else str(cache_dir),
                          n_jobs=n_jobs)),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(**spec["specaug"])),
    ])


@contextmanager
def timed(store, key):
    """Record the wall time of a block in ``store[key]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        store[key] = round(time.perf_counter() - t0, 2)


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def fmt_pm(values, scale=1.0, digits=1):
    """``"m ± s"`` over runs, or the single value."""
    m, s = mean_std(np.asarray(values, dtype=float) * scale)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def fmt_int(n):
    return f"{int(n):,}"


def fmt_macs(n):
    return f"{n / 1e6:.2f} M"
