"""How the main job's data path grows with the data: time and peak memory per stage.

On replicas of the real TAU22 development set's size and proportions
(:func:`skasc.datasets.make_tau22` with ``scale=``; 1.0 is the full
230,350 clips, ~30 GB of audio), fold 1, the paper's features (256 x 51),
each stage runs in a fresh process, so that its peak resident memory
(``ru_maxrss``) is its own:

1. ``features``: ``Reassembler`` then ``LogMel`` of the training split,
   written to the feature store (``--store disk``, the default) or held in
   memory (``--store memory``);
2. ``dir``: the same with :class:`~skasc.DeviceImpulseResponse` (four
   variants of each device-a recording) before ``LogMel``;
3. ``teacher``: teacher outputs at every ``--teacher-step``-th crop position
   of every training recording (a ``DwsCNNClassifier(hidden=18)`` fitted on
   a few clips stands for the teacher: the pass costs the same whatever the
   weights);
4. ``epoch``: one epoch of the paper's student (``hidden=18``, random crops,
   SpecAugment, mixup), from the store;
5. ``predict``: features of the evaluate split and the student's
   ``predict_proba`` on them.

Stages after the first reuse its store (checked against the audio's
content, which reads the audio again).  Printed: one line per fraction and
stage (clips, wall seconds, peak RSS in GB), then how each grows between
consecutive fractions (ratio of times and of peak memories against the
ratio of clips).

Run::

    python benchmarks/bench_scale.py                       # 1 % and 10 %
    python benchmarks/bench_scale.py --fractions 0.01 0.1 1.0 --work-dir /big/disk
    python benchmarks/bench_scale.py --store memory --fractions 0.01 0.1

The full size needs about 30 GB of disk for the audio plus the feature
store (6.8 GiB float32 for the training split, more with ``dir``) and hours
on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

STAGES = ("features", "dir", "teacher", "epoch", "predict")


def _rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def _front(args, root, subset, dir_variants=False):
    """The FeatureSet of a split (training view), through the store."""
    from skasc import DeviceImpulseResponse, LogMel, Reassembler
    from skasc.datasets import load_tau22

    data = load_tau22(root, subset)
    audio = Reassembler().fit_transform(data.X)
    if dir_variants:
        audio = DeviceImpulseResponse(os.path.join(root, "impulse_responses"), n_variants=4,
                                      devices=("a",), random_state=0).fit_transform(audio)
    store = None if args.store == "memory" else os.path.join(args.work_dir, "stores")
    logmel = LogMel(n_jobs=args.n_jobs, feature_store=store, store_dtype=args.store_dtype)
    return data, logmel.fit_transform(audio)


def run_stage(args):
    """One stage in this process; prints a JSON line."""
    import numpy as np
    import torch

    from skasc import DwsCNNClassifier, RandomCrop, SpecAugment
    from skasc._training import compute_teacher_outputs, teacher_positions

    torch.set_num_threads(args.threads)
    root = args.root
    t0 = time.perf_counter()
    data, F = _front(args, root, "train", dir_variants=args.stage == "dir")
    n = len(data.y)
    if args.stage == "teacher":
        t0 = time.perf_counter()  # the pass only
        X = RandomCrop().fit_transform(F)
        few = np.unique(data.y, return_index=True)[1]
        teacher = DwsCNNClassifier(hidden=18, max_epochs=1, random_state=0).fit(X[few], data.y[few])
        positions = teacher_positions(X, args.teacher_step)
        compute_teacher_outputs(teacher, X, positions)
        n = len(positions)
    elif args.stage == "epoch":
        t0 = time.perf_counter()
        X = SpecAugment().fit_transform(RandomCrop().fit_transform(F))
        DwsCNNClassifier(hidden=18, max_epochs=1, random_state=0).fit(X, data.y)
    elif args.stage == "predict":
        few = np.unique(data.y, return_index=True)[1]
        student = DwsCNNClassifier(hidden=18, max_epochs=1, random_state=0).fit(F[few], data.y[few])
        t0 = time.perf_counter()
        test, Fe = _front(args, root, "evaluate")
        student.predict_proba(Fe)
        n = len(test.y)
    print(json.dumps({"stage": args.stage, "n": int(n), "wall": time.perf_counter() - t0, "rss_gb": _rss_gb()}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    ap.add_argument("--work-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "skasc-bench-scale"))
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--store", choices=["disk", "memory"], default="disk")
    ap.add_argument("--store-dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--n-jobs", type=int, default=-1, help="LogMel workers (-1: all cores)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per stage")
    ap.add_argument("--teacher-step", type=int, default=10, help="frames between cached positions")
    ap.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
        return run_stage(args)

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from skasc.datasets import make_tau22

    os.makedirs(args.work_dir, exist_ok=True)
    rows = {}
    print(f"store: {args.store} ({args.store_dtype}); {os.cpu_count()} cores; work dir {args.work_dir}")
    print(f"{'fraction':>8s} {'stage':10s} {'items':>9s} {'wall s':>9s} {'peak GB':>8s}")
    for fraction in args.fractions:
        root = os.path.join(args.work_dir, f"tau22-{fraction:g}")
        t = time.perf_counter()
        make_tau22(root, scale=fraction, n_jobs=args.n_jobs)
        print(f"{fraction:8g} {'replica':10s} {'':>9s} {time.perf_counter() - t:9.1f}", flush=True)
        for stage in args.stages:
            cmd = [sys.executable, __file__, "--stage", stage, "--root", root,
                   "--work-dir", args.work_dir, "--store", args.store, "--store-dtype", args.store_dtype,
                   "--n-jobs", str(args.n_jobs), "--threads", str(args.threads),
                   "--teacher-step", str(args.teacher_step)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"{fraction:8g} {stage:10s} failed:\n{out.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows[fraction, stage] = row
            print(f"{fraction:8g} {stage:10s} {row['n']:9d} {row['wall']:9.1f} {row['rss_gb']:8.2f}", flush=True)
    fractions = sorted(args.fractions)
    if len(fractions) > 1:
        print("\ngrowth between fractions (x data -> x time, x peak memory):")
        for a, b in zip(fractions, fractions[1:]):
            for stage in args.stages:
                if (a, stage) in rows and (b, stage) in rows:
                    ra, rb = rows[a, stage], rows[b, stage]
                    print(f"  {a:g} -> {b:g} {stage:10s} x{rb['n'] / ra['n']:.1f} items -> "
                          f"x{rb['wall'] / ra['wall']:.2f} time, x{rb['rss_gb'] / ra['rss_gb']:.2f} memory")


if __name__ == "__main__":
    main()
