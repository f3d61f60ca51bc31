"""Pretrained teachers: what an AudioSet-pretrained network teaches the paper's student.

Over ``--folds`` grouped folds (StratifiedGroupKFold on the data's
``source_recording`` where it has one, else on the TAU22 location, else
on the recording) and ``--seeds`` seeds, trains on each training side and
scores on the held-out side:

1. **pretrained, frozen**: ``PretrainedClassifier(fine_tune="head")``
   (EfficientAT ``mn04_as``, AudioSet weights shipped with skasc), after
   :class:`~skasc.Reassembler`;
2. **pretrained, fine-tuned**: the same with ``fine_tune="all"``;
3. **plain student**: ``DwsCNNClassifier(hidden=18)`` on the paper's
   256x51 log-mel (``--features small``: 64x26), with random crops and
   SpecAugment;
4. **student distilled from from-scratch DwsCNNs of the same training
   cost**: an :class:`~skasc.EnsembleTeacher` of ``--scratch-members``
   DwsCNNs of width ``--scratch-hidden`` whose epochs are chosen, on every
   fold, so that its fit time matches the fine-tuning time of (2) (from a
   timed 1-epoch fit of one member; ``--scratch-epochs N`` fixes them);
5. **student distilled from the fine-tuned pretrained teacher** (2), which
   is given the audio of the student's crop windows, cached at every
   ``--teacher-step``-th crop position;
6. **student distilled from the head-only pretrained teacher** (1), the
   same way.

Every student (3)-(6) has the same schedule (hidden=18, ``--student-epochs``,
same seed); the distilled ones the same ``--soft-weight`` and
``--temperature``.  Printed: one line per fold and seed and model (clip
accuracy, file accuracy -- the clip probabilities of a file averaged, see
:func:`skasc.recordings.predict_recordings` -- and fit seconds, the
teachers' fits counted apart from the students'), the means ± standard
deviations over folds x seeds, and the paired differences (5) - (4),
(5) - (3), (6) - (4) and (6) - (3) in points.

``--timing``: instead, the time of ``--timing-epochs`` (10) epochs of
``fine_tune="all"`` ``mn04_as`` on ~5,000 one-second clips (a TAU22
replica of that size, written once under ``--work-dir``): clips per second
and minutes, with the machine's load average.

Timings are wall-clock on whatever else the machine runs (see the load
averages printed): compare the fit times of one run (fold and seed), whose
models train back to back, rather than across runs; with ``--n-jobs`` the
runs share the cores.  The defaults are the settings a brief exploration on
one fold of the kitchen data found best (documented in the option help).

Run::

    python benchmarks/bench_pretrained.py --quick                 # smoke run, a few minutes
    python benchmarks/bench_pretrained.py                         # the built-in replica
    python benchmarks/bench_pretrained.py --data ../shared/real-audio/kitchen-dev/labels.csv \\
        --folds 3 --seeds 2
    python benchmarks/bench_pretrained.py --timing
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from common import DEFAULT_WORK_DIR, fmt_pm, front_end, replica_root, set_threads  # noqa: E402

from skasc import (  # noqa: E402
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    PretrainedClassifier,
    Reassembler,
)
from skasc.recordings import predict_recordings, recording_ids  # noqa: E402

MODELS = {
    "frozen": "(1) pretrained, frozen (head)",
    "finetuned": "(2) pretrained, fine-tuned",
    "plain": "(3) plain student",
    "kd_scratch": "(4) KD from DwsCNNs, same cost",
    "kd_pretrained": "(5) KD from fine-tuned (2)",
    "kd_frozen": "(6) KD from head-only (1)",
}


# -- data ----------------------------------------------------------------------------


def load_data(args, work):
    """(name, clip rows X, labels y, groups, what the groups are)."""
    if args.data is not None:
        from skasc.datasets import load_audio_folder

        d = load_audio_folder(args.data)
        X, y = np.asarray(d.X), np.asarray(d.y)
        if "source_recording" in d:
            return str(args.data), X, y, np.asarray(d.source_recording), "source recording"
        return str(args.data), X, y, recording_ids(X), "file"
    from skasc.datasets import load_tau22

    root = replica_root(None, work)
    d = load_tau22(root, "all")
    X, y = np.array([str(pathlib.Path(root) / f) for f in d.filename]), np.asarray(d.y)
    # parallel recordings of a segment and the segments of a location stay together
    return f"TAU22 replica {root}", X, y, np.asarray(d.identifier), "location"


def file_accuracy(estimator, X, y, recordings):
    """Accuracy of one decision per recording (clip probabilities averaged)."""
    r = predict_recordings(estimator, X, recordings)
    truth = dict(zip(recordings, y))
    return float(np.mean(r.y_pred == np.array([truth[k] for k in r.recording])))


def timed_fit(est, X, y):
    t0 = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t0


# -- one fold and seed ---------------------------------------------------------------


def scratch_epochs(args, Xf, y, seed, budget):
    """Epochs per member so that the scratch ensemble costs ``budget`` seconds."""
    if args.scratch_epochs:
        return args.scratch_epochs, None
    one = timed_fit(DwsCNNClassifier(hidden=args.scratch_hidden, max_epochs=1, random_state=seed), Xf, y)
    return max(1, int(round(budget / (args.scratch_members * one)))), one


def run_one(args, X, y, tr, te, seed, work):
    """{model: (clip acc, file acc, fit s)} and notes for one fold and seed."""
    rec_te = recording_ids(X[te])
    res, notes = {}, {}

    def score(model, est, Xt, fit_s):
        clip = float(est.score(Xt, y[te]))
        res[model] = (clip, file_accuracy(est, Xt, y[te], rec_te), fit_s)

    teacher_kw = dict(max_epochs=args.teacher_epochs, lr=args.teacher_lr, body_lr_scale=args.body_lr_scale,
                      random_state=seed)
    # (1), (2): the pretrained network, on audio
    head = Pipeline([("reassemble", Reassembler()),
                     ("clf", PretrainedClassifier(fine_tune="head", **{**teacher_kw, "lr": args.head_lr}))])
    score("frozen", head, X[te], timed_fit(head, X[tr], y[tr]))
    full = Pipeline([("reassemble", Reassembler()), ("clf", PretrainedClassifier(fine_tune="all", **teacher_kw))])
    t_pre = timed_fit(full, X[tr], y[tr])
    score("finetuned", full, X[te], t_pre)

    # students' features, computed once (cached on disk by LogMel)
    front = front_end(args.features, cache_dir=work / "feature-cache")
    Xf, Xft = front.fit_transform(X[tr]), front.transform(X[te])
    student_kw = dict(hidden=18, max_epochs=args.student_epochs, random_state=seed)
    kd_kw = dict(soft_weight=args.soft_weight, temperature=args.temperature, teacher_step=args.teacher_step)

    # (3) plain student
    plain = DwsCNNClassifier(**student_kw)
    score("plain", plain, Xft, timed_fit(plain, Xf, y[tr]))

    # (4) from-scratch DwsCNN teachers of the fine-tuning's cost
    epochs, one = scratch_epochs(args, Xf, y[tr], seed, t_pre)
    members = [DwsCNNClassifier(hidden=args.scratch_hidden, max_epochs=epochs, random_state=1000 * seed + k)
               for k in range(args.scratch_members)]
    scratch = EnsembleTeacher(members)
    t_scratch = timed_fit(scratch, Xf, y[tr])
    notes.update(scratch_epochs=epochs, one_epoch_s=one, t_scratch=t_scratch, t_pre=t_pre,
                 scratch_clip=float(scratch.score(Xft, y[te])))
    kd = DistilledStudent(scratch, **student_kw, **kd_kw, teacher_outputs=args.scratch_outputs)
    score("kd_scratch", kd, Xft, timed_fit(kd, Xf, y[tr]))

    # (5) from the fine-tuned pretrained teacher (given the crops' audio)
    kd = DistilledStudent(full.steps[-1][1], **student_kw, **kd_kw, teacher_outputs=args.finetuned_outputs)
    score("kd_pretrained", kd, Xft, timed_fit(kd, Xf, y[tr]))

    # (6) from the head-only pretrained teacher (1); online, it hears mixup's mixtures
    kd = DistilledStudent(head.steps[-1][1], **student_kw, **kd_kw, teacher_outputs=args.head_outputs)
    score("kd_frozen", kd, Xft, timed_fit(kd, Xf, y[tr]))
    notes["load"] = os.getloadavg()[0]
    return res, notes


# -- report --------------------------------------------------------------------------


def report(runs):
    print(f"\n== summary over {len(runs)} runs (folds x seeds): mean ± std ==")
    print(f"{'model':34s} {'clip acc %':>14s} {'file acc %':>14s} {'fit s':>12s}")
    for m, label in MODELS.items():
        clip, file, fit = (np.array([r[m][i] for r in runs]) for i in range(3))
        print(f"{label:34s} {fmt_pm(clip, 100):>14s} {fmt_pm(file, 100):>14s} {fmt_pm(fit, 1, 0):>12s}")
    print("\n== paired differences, points (mean ± std over runs; per run in brackets) ==")
    for a, b in (("kd_pretrained", "kd_scratch"), ("kd_pretrained", "plain"),
                 ("kd_frozen", "kd_scratch"), ("kd_frozen", "plain"),
                 ("kd_scratch", "plain"), ("finetuned", "frozen")):
        parts = []
        for i, what in ((0, "clip"), (1, "file")):
            d = np.array([100 * (r[a][i] - r[b][i]) for r in runs])
            parts.append(f"{what} {fmt_pm(d):>12s} [{', '.join(f'{v:+.1f}' for v in d)}]")
        print(f"{MODELS[a][:3]} - {MODELS[b][:3]} ({a} - {b}): " + "   ".join(parts))


def benchmark(args, work):
    name, X, y, groups, kind = load_data(args, work)
    print(f"data: {name}: {len(y):,} clips, {len(np.unique(recording_ids(X))):,} files, "
          f"{len(np.unique(groups)):,} groups ({kind}), {len(np.unique(y))} classes")
    print(f"teachers: mn04_as, {args.teacher_epochs} epochs, lr {args.teacher_lr:g} (head-only: "
          f"{args.head_lr:g}), body_lr_scale {args.body_lr_scale:g}; students: hidden=18, "
          f"{args.student_epochs} epochs, {args.features} features; KD soft_weight {args.soft_weight:g}, "
          f"T {args.temperature:g}, teacher_step {args.teacher_step}; teacher_outputs (4) "
          f"{args.scratch_outputs}, (5) {args.finetuned_outputs}, (6) {args.head_outputs}; scratch teachers "
          f"{args.scratch_members} x hidden={args.scratch_hidden}")
    splits = list(StratifiedGroupKFold(args.folds, shuffle=True, random_state=args.split_seed)
                  .split(X, y, groups))[:args.max_folds or None]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(f, seed) for f in range(len(splits)) for seed in seeds]
    print(f"{len(jobs)} runs (folds x seeds), {args.n_jobs} at a time", flush=True)

    def one(f, seed):
        set_threads(args.threads)
        tr, te = splits[f]
        res, notes = run_one(args, X, y, tr, te, seed, work)
        if args.n_jobs > 1:  # a line as each run ends (the table follows when all have)
            print(f"[fold {f} seed {seed} done] " + ", ".join(
                f"{m} {100 * r[0]:.1f}/{100 * r[1]:.1f}% {r[2]:.0f}s" for m, r in res.items()), flush=True)
        return res, notes

    if args.n_jobs > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=args.n_jobs, backend="loky")(delayed(one)(f, s) for f, s in jobs)
    else:
        results = (one(f, s) for f, s in jobs)  # printed as each run ends
    runs = []
    print(f"\n{'fold':>4s} {'seed':>4s} {'model':34s} {'clip %':>7s} {'file %':>7s} {'fit s':>7s}")
    for (f, seed), (res, notes) in zip(jobs, results):
        runs.append(res)
        for m, label in MODELS.items():
            clip, file, fit = res[m]
            print(f"{f:4d} {seed:4d} {label:34s} {100 * clip:7.1f} {100 * file:7.1f} {fit:7.1f}")
        epoch = "" if notes["one_epoch_s"] is None else \
            f" (1 member epoch timed at {notes['one_epoch_s']:.1f} s)"
        print(f"{'':10s}training cost: fine-tuning (2) {notes['t_pre']:.0f} s, scratch ensemble "
              f"{args.scratch_members} x hidden={args.scratch_hidden} x {notes['scratch_epochs']} epochs "
              f"{notes['t_scratch']:.0f} s{epoch}, its clip accuracy {100 * notes['scratch_clip']:.1f} %; "
              f"load at the end {notes['load']:.2f}", flush=True)
    report(runs)


# -- timing mode ---------------------------------------------------------------------


def timing(args, work):
    from skasc.datasets import load_tau22, make_tau22

    root = work / "tau22-timing"
    if not (root / "skasc_replica.json").is_file():
        print(f"writing a 5,000-clip TAU22 replica to {root} (once) ...", flush=True)
    # 10 scenes x 5 cities x 5 locations x 2 segments x 10 one-second snippets, device a only
    make_tau22(root, n_cities=5, n_locations=5, n_segments=2, devices=("a",), random_state=0)
    d = load_tau22(root, "all")
    X, y = np.array([str(root / f) for f in d.filename]), np.asarray(d.y)
    clf = PretrainedClassifier(fine_tune="all", max_epochs=args.timing_epochs, lr=args.teacher_lr,
                               body_lr_scale=args.body_lr_scale, random_state=0)
    pipe = Pipeline([("reassemble", Reassembler()), ("clf", clf)])
    print(f"fine-tuning mn04_as (fine_tune='all') {args.timing_epochs} epochs on {len(y):,} clips of 1 s, "
          f"{args.threads} threads; load average before {os.getloadavg()[0]:.2f}", flush=True)
    fit_s = timed_fit(pipe, X, y)
    epochs = np.asarray(clf.net_.history[:, "dur"], dtype=float)
    print(f"fit {fit_s:.1f} s = {fit_s / 60:.2f} min (front end and set-up included); epochs "
          f"{epochs.sum():.1f} s, {epochs.mean():.1f} s each (min {epochs.min():.1f}, max {epochs.max():.1f})")
    print(f"throughput: {len(y) * len(epochs) / epochs.sum():,.0f} training clips/s over the epochs, "
          f"{len(y) * len(epochs) / fit_s:,.0f} over the whole fit; load average after "
          f"{os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None,
                    help="folder of class subfolders or CSV table of recordings (load_audio_folder); "
                         "default: the built-in TAU22 replica")
    ap.add_argument("--work-dir", default=None, help=f"replicas and feature cache (default {DEFAULT_WORK_DIR})")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--n-jobs", type=int, default=1,
                    help="runs (folds x seeds) in parallel processes (then use --threads 1)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    ap.add_argument("--split-seed", type=int, default=0, help="shuffle of StratifiedGroupKFold")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds run: first-seed ... first-seed + seeds - 1 (to add seeds to an "
                         "earlier run's table; the folds do not depend on it)")
    ap.add_argument("--features", choices=["small", "paper"], default="paper")
    ap.add_argument("--teacher-epochs", type=int, default=10,
                    help="epochs of the pretrained teachers (kitchen fold 0: 10 epochs, lr 1e-3, "
                         "body_lr_scale 1 gave 69.7 %% clip accuracy)")
    ap.add_argument("--teacher-lr", type=float, default=1e-3)
    ap.add_argument("--head-lr", type=float, default=1e-3, help="lr of the frozen teacher's head")
    ap.add_argument("--body-lr-scale", type=float, default=1.0)
    ap.add_argument("--student-epochs", type=int, default=60,
                    help="epochs of every student (3)-(6); the paper trains 600")
    ap.add_argument("--soft-weight", type=float, default=0.9,
                    help="kitchen fold 0, 30 epochs: 0.5 (T=2) gave 39.6 %% clip / 45.9 %% file, "
                         "0.9 (T=4) 36.5 / 43.2; with 60 epochs, 0.9 (T=2) is what the README reports")
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--teacher-step", type=int, default=1,
                    help="crop positions (frames) the cached teachers' outputs are computed at "
                         "(kitchen fold 0, (5): 1 gave 40.4 %% clip, 5 gave 38.5 %%)")
    ap.add_argument("--scratch-outputs", choices=["cached", "online"], default="cached",
                    help="teacher_outputs of (4)")
    ap.add_argument("--finetuned-outputs", choices=["cached", "online"], default="cached",
                    help="teacher_outputs of (5)")
    ap.add_argument("--head-outputs", choices=["cached", "online"], default="online",
                    help="teacher_outputs of (6): online, the teacher hears each batch's mixup "
                         "mixture (function matching)")
    ap.add_argument("--scratch-members", type=int, default=2, help="DwsCNNs in the scratch ensemble (4)")
    ap.add_argument("--scratch-hidden", type=int, default=32, help="their width")
    ap.add_argument("--scratch-epochs", type=int, default=0, help="0: matched to the fine-tuning time")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 fold, 1 seed, 2-3 epochs")
    ap.add_argument("--timing", action="store_true", help="time fine-tuning on ~5,000 clips instead")
    ap.add_argument("--timing-epochs", type=int, default=10)
    args = ap.parse_args(argv)
    if args.quick:
        args.max_folds, args.seeds = 1, 1
        args.teacher_epochs, args.student_epochs, args.timing_epochs = 2, 3, 1
    set_threads(args.threads)
    work = pathlib.Path(args.work_dir or DEFAULT_WORK_DIR).expanduser()
    print(f"{os.cpu_count()} cpus, {args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    if args.timing:
        return timing(args, work)
    return benchmark(args, work)


if __name__ == "__main__":
    main()
