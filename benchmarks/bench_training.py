"""Training throughput: ``DwsCNNClassifier.fit`` vs a minimal hand-written PyTorch loop.

Both train the same network (``DwsCNN``, channels-last) on the same random
features with the paper's per-batch augmentation, re-drawn every batch:

* a random 1-s crop (``--width`` frames) of each row's 10-s recording,
* one frequency and one time SpecAugment mask of width 0-10 set to zero,
* mixup with lambda ~ Beta(0.5, 0.5) (soft-target cross-entropy),

with Adam (lr 0.01, cosine decay over the epochs), the same batch size and
the same number of batches per epoch.  skasc receives a
``SpecAugment().fit_transform(RandomCrop().fit_transform(FeatureSet))``;
the hand-written loop crops and masks with numpy from one
``(recordings, frames, bands)`` array.

Reported: samples/s of the whole ``fit`` (network construction, skorch
set-up and, with ``compile``, the compilation included), of the epochs
alone (skorch's ``history[:, "dur"]`` for skasc, the timed epoch loop for
the hand-written one) and of the steady state (median epoch after the
first), the process CPU time per sample and the page faults per batch,
medians over ``--repeat`` interleaved rounds, and the ratios of each row to
the unchanged hand-written loop ("manual").

Rows: "skasc" is ``fit`` as users get it; "skasc compile" adds
``compile=True`` (with ``--compile``); "manual" is the hand-written loop
as it always was; "manual malloc" is the same loop run inside
:func:`skasc._allocator.reuse_freed_memory`, the allocator setting ``fit``
uses on CPU, to show how much of skasc's gain is that setting (a
hand-written loop can make it too).

Allocation matters more than one would think here: a training batch of 64
paper-size clips makes 60-MB activations, which glibc always maps afresh,
so every step pays ~280,000 page faults (a third of the CPU time of a
step).  ``fit`` keeps freed memory for the next step instead (see
``reuse_freed_memory``).  Setting ``THP_MEM_ALLOC_ENABLE=1`` in the
environment *before Python starts* makes PyTorch ask for transparent huge
pages, which cuts the faults of the unchanged loop too.

Run::

    python benchmarks/bench_training.py            # paper size: 256 bands x 51 frames
    python benchmarks/bench_training.py --small    # 64 x 26, quick
    python benchmarks/bench_training.py --compile --epochs 4   # also compile=True
"""

from __future__ import annotations

import argparse
import os
import resource
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from skasc import DwsCNNClassifier, FeatureSet, RandomCrop, SpecAugment  # noqa: E402
from skasc._allocator import reuse_freed_memory  # noqa: E402
from skasc.nn import DwsCNN  # noqa: E402


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def make_data(n_rec, clips_per_rec, bands, width, n_classes, seed=0):
    """Random 10-s recordings (time-major) and one row per 1-s clip."""
    rng = np.random.default_rng(seed)
    hop = width - 1  # 50 frames per second at the paper's 20-ms hop
    rec_frames = hop * clips_per_rec + 1
    store = rng.normal(size=(n_rec, rec_frames, bands)).astype(np.float32)
    labels = rng.integers(0, n_classes, size=n_rec)
    store += labels[:, None, None].astype(np.float32) * 0.1  # something to learn
    rec = np.repeat(np.arange(n_rec), clips_per_rec)
    piece = np.tile(np.arange(clips_per_rec), n_rec)
    rec_start = rec * rec_frames
    fs = FeatureSet(store.reshape(-1, bands), rec_start, rec_start + rec_frames,
                    rec_start + piece * hop, width)
    y = labels[rec]
    return store, fs, y


def fit_skasc(fs, y, args, compile=False):
    Xt = SpecAugment().fit_transform(RandomCrop().fit_transform(fs))
    clf = DwsCNNClassifier(hidden=args.hidden, max_epochs=args.epochs,
                           batch_size=args.batch_size, random_state=0, compile=compile)
    c0, t0, f0 = time.process_time(), time.perf_counter(), _faults()
    clf.fit(Xt, y)
    total, cpu, faults = time.perf_counter() - t0, time.process_time() - c0, _faults() - f0
    durs = np.asarray(clf.net_.history[:, "dur"], dtype=float)
    steady = float(np.median(durs[1:])) if len(durs) > 1 else float(durs[0])
    first_loss = clf.net_.history[0, "batches", 0, "train_loss"]
    return total, float(durs.sum()), cpu, steady, faults, clf.predict_proba(fs[:64]), first_loss


def fit_manual(store, y_rows, args, n_classes, malloc=False):
    """Minimal loop: crop + masks + mixup per batch, channels-last, Adam + cosine.

    Unchanged since the first benchmark; ``malloc`` runs it inside
    ``reuse_freed_memory``.
    """
    with reuse_freed_memory(enabled=malloc):
        return _fit_manual(store, y_rows, args, n_classes)


def _fit_manual(store, y_rows, args, n_classes):
    c0, t0, f0 = time.process_time(), time.perf_counter(), _faults()
    n_rec, rec_frames, bands = store.shape
    width = args.width
    clips = (rec_frames - 1) // (width - 1)
    n = len(y_rows)
    row_rec = np.arange(n) // clips
    torch.manual_seed(0)
    model = DwsCNN(n_classes=n_classes, hidden=args.hidden,
                   input_shape=(1, bands, width)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    y_t = torch.as_tensor(y_rows, dtype=torch.int64)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    flat = store.reshape(-1, bands)
    t_epochs = time.perf_counter()
    durs = []
    for _ in range(args.epochs):
        t_epoch = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).numpy()
        for s in range(0, n, args.batch_size):
            rows = perm[s:s + args.batch_size]
            b = len(rows)
            # random crop inside each row's recording
            start = rng.integers(0, rec_frames - width + 1, size=b) + row_rec[rows] * rec_frames
            x = flat[start[:, None] + np.arange(width)].transpose(0, 2, 1)  # (b, bands, width)
            # one frequency and one time mask, width 0..10, set to 0
            for axis, size in ((1, bands), (2, width)):
                w = np.minimum(rng.integers(0, 11, size=b), size)
                st = np.floor(rng.random(b) * (size - w + 1)).astype(np.int64)
                idx = np.arange(size)
                m = (idx >= st[:, None]) & (idx < (st + w)[:, None])
                x[np.broadcast_to(m[:, :, None] if axis == 1 else m[:, None, :], x.shape)] = 0.0
            xb = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)
            target = F.one_hot(y_t[rows], n_classes).float()
            lam = float(rng.beta(0.5, 0.5))
            p = torch.as_tensor(rng.permutation(b))
            xb = lam * xb + (1 - lam) * xb[p]
            target = lam * target + (1 - lam) * target[p]
            xb = xb.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            loss = -(target * F.log_softmax(model(xb), 1)).sum(1).mean()
            loss.backward()
            opt.step()
        sched.step()
        durs.append(time.perf_counter() - t_epoch)
    t1, c1 = time.perf_counter(), time.process_time()
    steady = float(np.median(durs[1:])) if len(durs) > 1 else durs[0]
    return t1 - t0, t1 - t_epochs, c1 - c0, steady, _faults() - f0, None, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="64 bands x 26 frames")
    ap.add_argument("--hidden", type=int, default=18)
    ap.add_argument("--recordings", type=int, default=None,
                    help="10-s recordings (10 rows each); default 32 (paper size) / 64 (--small)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--compile", action="store_true", help="also time fit with compile=True")
    args = ap.parse_args(argv)
    bands, args.width = (64, 26) if args.small else (256, 51)
    n_rec = args.recordings or (64 if args.small else 32)
    n_classes = 10
    torch.set_num_threads(args.threads)
    store, fs, y = make_data(n_rec, 10, bands, args.width, n_classes)
    n = len(fs)
    print(f"{n} rows ({n_rec} recordings x 10 clips) of {bands}x{args.width}, hidden={args.hidden}, "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.threads} threads, "
          f"torch {torch.__version__}, THP_MEM_ALLOC_ENABLE="
          f"{os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    fit_skasc(fs[:64], y[:64], argparse.Namespace(**{**vars(args), "epochs": 1}))  # warm-up
    runs = {"skasc": lambda: fit_skasc(fs, y, args),
            "manual": lambda: fit_manual(store, y, args, n_classes),
            "manual malloc": lambda: fit_manual(store, y, args, n_classes, malloc=True)}
    if args.compile:
        runs["skasc compile"] = lambda: fit_skasc(fs, y, args, compile=True)
    res = {k: [] for k in runs}
    load0 = os.getloadavg()
    for _ in range(args.repeat):
        for k, run in runs.items():
            res[k].append(run())
    load1 = os.getloadavg()
    samples = n * args.epochs
    batches = args.epochs * -(-n // args.batch_size)
    print(f"load average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} cpus; "
          f"{args.repeat} interleaved rounds")
    print(f"{'':14s} {'fit samples/s':>14s} {'[min, max]':>16s} {'epochs samples/s':>17s} "
          f"{'steady samples/s':>17s} {'cpu ms/sample':>14s} {'faults/batch':>13s}")
    table = {}
    for k, v in res.items():
        v = np.array([r[:5] for r in v])
        table[k] = v
        fit_sps, ep_sps = samples / v[:, 0], samples / v[:, 1]
        print(f"{k:14s} {np.median(fit_sps):14.1f}   [{fit_sps.min():6.1f}, {fit_sps.max():6.1f}] "
              f"{np.median(ep_sps):17.1f} {np.median(n / v[:, 3]):17.1f} "
              f"{np.median(v[:, 2]) / samples * 1e3:14.2f} {np.median(v[:, 4]) / batches:13.0f}")
    b = table["manual"]
    for k, a in table.items():
        if k == "manual":
            continue
        for i, what in ((0, "whole fit"), (1, "epochs only"), (3, "steady epoch"),
                        (2, "CPU time of the fit")):
            r = b[:, i] / a[:, i]  # samples/s ratio row / unchanged manual loop
            print(f"ratio {k} / manual ({what}): median {np.median(r):.3f} "
                  f"(per-round range {r.min():.3f}-{r.max():.3f})")
    if "skasc compile" in res:
        diff = max(np.abs(e[5] - c[5]).max() for e, c in zip(res["skasc"], res["skasc compile"]))
        print(f"compile=True vs eager, max |predict_proba difference| on 64 rows after training: "
              f"{diff:.2e} (Adam's sign-like first steps amplify float noise in near-zero "
              "gradients: compare a step, not a whole run)")
        loss = [(e[6], c[6]) for e, c in zip(res["skasc"], res["skasc compile"])]
        print("first-batch training loss eager vs compile: "
              + ", ".join(f"{a:.6f} vs {b:.6f}" for a, b in loss))

if __name__ == "__main__":
    main()
