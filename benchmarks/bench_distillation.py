"""Cost of distillation: online teacher vs teacher outputs computed once.

Prints, in one run:

1. **The demo's teachers** (``skasc.reproduce.DEMO``: two hidden=24
   networks) on the built-in replica at 1x256x51: the fit time of the plain
   hidden=18 student, of the distilled student with the teacher run on
   every batch (``teacher_outputs="online"``) and with its outputs computed
   once (``"cached"``, the one-off teacher pass timed separately), and the
   ratios distilled / plain.
2. **Four hidden=256 teachers** (the paper's) at 1x256x51 on a few
   recordings, trained one epoch (only their cost matters here): the same
   timings, then a **projection** to the paper's 600 student epochs from the
   measured per-epoch and one-off costs, per 10-s recording, for the cached
   mode on the ``--teacher-step`` grid and on every crop position.
3. **The KD gain** (accuracy of the distilled student minus the plain one,
   on the replica's evaluation split) of cached and online mode, per seed and
   averaged over ``--seeds`` seeds; by default on the 64x26 features
   (``--gain-features paper`` for 256x51, about 8x longer).

Every timing is wall-clock on whatever else the machine runs; the ratios
come from runs in the same process, back to back.

Run::

    python benchmarks/bench_distillation.py
    python benchmarks/bench_distillation.py --skip-gain      # timings only
    python benchmarks/bench_distillation.py --skip-timing --teacher-step 1   # gain, every position
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from common import DEFAULT_WORK_DIR, front_end, replica_root, set_threads  # noqa: E402

from skasc import DistilledStudent, DwsCNNClassifier, EnsembleTeacher  # noqa: E402
from skasc._training import teacher_positions  # noqa: E402
from skasc.datasets import load_tau22  # noqa: E402
from skasc.reproduce import DEMO  # noqa: E402


def _timed_fit(make, X, y):
    t0 = time.perf_counter()
    model = make().fit(X, y)
    return model, time.perf_counter() - t0


def distillation_costs(X, y, teacher, args, epochs, label):
    """Fit plain, online and cached students; return per-epoch and one-off seconds."""
    common = dict(hidden=18, max_epochs=epochs, random_state=0)
    rows = {}
    _, rows["plain"] = _timed_fit(lambda: DwsCNNClassifier(**common), X, y)
    _, rows["online"] = _timed_fit(
        lambda: DistilledStudent(teacher, teacher_outputs="online", **common), X, y)
    timings = {}

    import skasc._teachers as teachers  # where DistilledStudent's cached pass calls it

    real = teachers.compute_teacher_outputs

    def timed_pass(*a, **k):
        t0 = time.perf_counter()
        out = real(*a, **k)
        timings["pass"] = time.perf_counter() - t0
        return out

    teachers.compute_teacher_outputs = timed_pass
    try:
        _, rows["cached"] = _timed_fit(
            lambda: DistilledStudent(teacher, teacher_outputs="cached", teacher_step=args.teacher_step,
                                     **common), X, y)
    finally:
        teachers.compute_teacher_outputs = real
    n_pos = len(teacher_positions(X, args.teacher_step))
    n_pos_all = len(teacher_positions(X, 1))
    one_off = timings["pass"]
    per_epoch = {"plain": rows["plain"] / epochs, "online": rows["online"] / epochs,
                 "cached": (rows["cached"] - one_off) / epochs}
    print(f"\n== {label}: {len(y)} clips, {epochs} epochs, student hidden=18 at {X.feature_shape} ==")
    print(f"{'mode':28s} {'fit s':>8s} {'per epoch s':>12s} {'/ plain (fit)':>14s} {'/ plain (epoch)':>16s}")
    for mode in ("plain", "online", "cached"):
        print(f"{mode:28s} {rows[mode]:8.1f} {per_epoch[mode]:12.2f} {rows[mode] / rows['plain']:14.2f} "
              f"{per_epoch[mode] / per_epoch['plain']:16.2f}")
    print(f"{'one-off teacher pass':28s} {one_off:8.1f}   ({n_pos:,} windows on a "
          f"{args.teacher_step}-frame grid, {one_off / n_pos * 1e3:.1f} ms each; "
          f"every crop position would be {n_pos_all:,})")
    return dict(per_epoch=per_epoch, one_off=one_off, n_pos=n_pos, n_pos_all=n_pos_all,
                n_rec=len(np.unique(X.rec_start)))


def project(costs, epochs=600):
    """Projected cost of ``epochs`` student epochs, relative to the plain student."""
    e = costs["per_epoch"]
    plain = epochs * e["plain"]
    online = epochs * e["online"]
    cached = costs["one_off"] + epochs * e["cached"]
    cached_all = costs["one_off"] * costs["n_pos_all"] / costs["n_pos"] + epochs * e["cached"]
    per_rec = 1.0 / costs["n_rec"]
    print(f"\nPROJECTION (not measured) to {epochs} student epochs, from the per-epoch and one-off "
          f"costs above; seconds per 10-s recording:")
    for name, value in (("plain student", plain), ("distilled, online teacher", online),
                        ("distilled, cached on the grid", cached),
                        ("distilled, cached at every crop position", cached_all)):
        print(f"  {name:42s} {value * per_rec:10.1f} s   {value / plain:7.2f}x plain")


def kd_gain(args, work):
    root = replica_root(args.data_root, work)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    front = front_end(args.gain_features, cache_dir=work / "feature-cache")
    X, Xt = front.fit_transform(train.X), front.transform(test.X)
    print(f"\n== KD gain on the replica ({args.gain_features} features {X.feature_shape}, "
          f"{len(train.y)} training / {len(test.y)} evaluation clips): "
          f"{DEMO.n_teachers} hidden={DEMO.teacher_hidden} teachers x {args.gain_teacher_epochs} epochs, "
          f"students {args.gain_student_epochs} epochs ==")
    gains = {"cached": [], "online": []}
    print(f"{'seed':>4s} {'teacher':>8s} {'plain':>7s} {'cached':>7s} {'online':>7s} "
          f"{'gain cached':>12s} {'gain online':>12s} {'cached s':>9s} {'online s':>9s}")
    for seed in range(args.seeds):
        members = [DwsCNNClassifier(hidden=DEMO.teacher_hidden, max_epochs=args.gain_teacher_epochs,
                                    random_state=100 * seed + k) for k in range(DEMO.n_teachers)]
        teacher = EnsembleTeacher(members).fit(X, train.y)
        common = dict(hidden=18, max_epochs=args.gain_student_epochs, random_state=seed)
        plain = DwsCNNClassifier(**common).fit(X, train.y).score(Xt, test.y)
        acc, secs = {}, {}
        for mode in ("cached", "online"):
            model, secs[mode] = _timed_fit(
                lambda: DistilledStudent(teacher, teacher_outputs=mode, teacher_step=args.teacher_step,
                                         **common), X, train.y)
            acc[mode] = model.score(Xt, test.y)
            gains[mode].append(100 * (acc[mode] - plain))
        print(f"{seed:4d} {100 * teacher.score(Xt, test.y):7.1f}% {100 * plain:6.1f}% "
              f"{100 * acc['cached']:6.1f}% {100 * acc['online']:6.1f}% {gains['cached'][-1]:+11.1f}p "
              f"{gains['online'][-1]:+11.1f}p {secs['cached']:9.1f} {secs['online']:9.1f}")
    c, o = np.mean(gains["cached"]), np.mean(gains["online"])
    print(f"mean KD gain over {args.seeds} seeds: cached {c:+.2f} points, online {o:+.2f} points; "
          f"cached - online {c - o:+.2f} points (goal: within 1)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=None, help="TAU22 folder (default: the cached replica)")
    ap.add_argument("--work-dir", default=None, help=f"replica and caches (default {DEFAULT_WORK_DIR})")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--teacher-step", type=int, default=10, help="grid of cached crop positions (frames)")
    ap.add_argument("--demo-epochs", type=int, default=3,
                    help="student epochs timed with the demo's teachers")
    ap.add_argument("--paper-recordings", type=int, default=4,
                    help="10-s recordings for the four hidden=256 teachers")
    ap.add_argument("--paper-epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gain-features", choices=["small", "paper"], default="small")
    ap.add_argument("--gain-teacher-epochs", type=int, default=DEMO.teacher_epochs)
    ap.add_argument("--gain-student-epochs", type=int, default=DEMO.student_epochs)
    ap.add_argument("--skip-gain", action="store_true")
    ap.add_argument("--skip-timing", action="store_true", help="only the KD gain")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    work = pathlib.Path(args.work_dir or DEFAULT_WORK_DIR).expanduser()
    print(f"{os.cpu_count()} cpus, {args.threads} threads, load average {os.getloadavg()[0]:.2f}")

    if args.skip_timing:
        return kd_gain(args, work)
    root = replica_root(args.data_root, work)
    train = load_tau22(root, "train")
    front = front_end("paper", cache_dir=work / "feature-cache")
    X = front.fit_transform(train.X)
    y = train.y

    # 1. the demo's teachers
    t0 = time.perf_counter()
    members = [DwsCNNClassifier(hidden=DEMO.teacher_hidden, max_epochs=1, random_state=k)
               for k in range(DEMO.n_teachers)]
    teacher = EnsembleTeacher(members).fit(X, y)
    print(f"(demo teachers: {DEMO.n_teachers} x hidden={DEMO.teacher_hidden}, trained 1 epoch for timing "
          f"in {time.perf_counter() - t0:.0f} s)")
    demo = distillation_costs(X, y, teacher, args, args.demo_epochs, "demo teachers")
    project(demo)

    # 2. four hidden=256 teachers on a few recordings
    first_of_scene = {}  # one recording of each of the first scenes: at least 2 classes
    for rec, scene in zip(train.recording, y):
        first_of_scene.setdefault(scene, rec)
    keep = np.isin(train.recording, list(first_of_scene.values())[:args.paper_recordings])
    Xs = front.fit_transform(train.X[keep])
    t0 = time.perf_counter()
    # batches of 8 keep the training activations of a hidden=256 network near 2 GB
    members = [DwsCNNClassifier(hidden=256, max_epochs=1, batch_size=8, random_state=k) for k in range(4)]
    big = EnsembleTeacher(members).fit(Xs, y[keep])
    print(f"\n(paper teachers: 4 x hidden=256, trained 1 epoch on {keep.sum()} clips for timing "
          f"in {time.perf_counter() - t0:.0f} s)")
    paper = distillation_costs(Xs, y[keep], big, args, args.paper_epochs, "four hidden=256 teachers")
    project(paper)

    if not args.skip_gain:
        kd_gain(args, work)


if __name__ == "__main__":
    main()
