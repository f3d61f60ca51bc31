"""Device generalization and data efficiency: the DCASE 2024/2025 recipe on the built-in data.

Trains the paper's student (hidden=18) on the generated TAU22 replica over
several seeds, in these configurations:

* ``plain``: the front end of the paper (crops, SpecAugment, mixup);
* ``+FreqMixStyle``: :class:`skasc.FreqMixStyle` (DCASE 2024 baseline defaults);
* ``+DIR``: :class:`skasc.DeviceImpulseResponse` with the replica's seen
  devices' impulse responses (``make_tau22`` writes them; never s4-s6);
* ``+both``;
* ``25 %``: the plain student on the nested 25 % training subset
  (``load_tau22(..., fraction=25)``) instead of 100 %;
* ``device-specific``: the plain student fine-tuned per training device
  (:class:`skasc.device_specific.DeviceSpecificClassifier`), against the
  general model it starts from, on the devices seen in training.

For each it prints overall, seen-device (a, b, c, s1-s3) and unseen-device
(s4-s6) class-wise accuracy and the log-loss, mean +- std over the seeds,
and the per-seed differences to ``plain``.

Usage::

    python benchmarks/bench_generalization.py                 # 3 seeds, ~30-40 min on 2 cores
    python benchmarks/bench_generalization.py --quick         # 1 seed, few epochs: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_WORK_DIR, FEATURES, fmt_pm, replica_root, set_threads  # noqa: E402

from skasc import (  # noqa: E402
    DeviceImpulseResponse,
    DwsCNNClassifier,
    FreqMixStyle,
    LogMel,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from skasc._table import format_table  # noqa: E402
from skasc.datasets import SEEN_DEVICES, UNSEEN_DEVICES, REAL_DEVICES, load_tau22  # noqa: E402
from skasc.device_specific import DeviceSpecificClassifier  # noqa: E402
from skasc.metrics import dcase_log_loss, macro_accuracy  # noqa: E402

TRAIN_DEVICES = REAL_DEVICES + SEEN_DEVICES


def pipeline(root, cache, seed, epochs, *, fms=False, dir_=False):
    from sklearn.pipeline import Pipeline

    spec = FEATURES["small"]
    steps = [("reassemble", Reassembler())]
    if dir_:
        steps.append(("dir", DeviceImpulseResponse(root / "impulse_responses", random_state=seed)))
    steps += [("logmel", LogMel(**spec["logmel"], memory=str(cache))),
              ("crop", RandomCrop()), ("specaug", SpecAugment(**spec["specaug"]))]
    if fms:
        steps.append(("fms", FreqMixStyle()))
    steps.append(("clf", DwsCNNClassifier(hidden=18, max_epochs=epochs, random_state=seed)))
    return Pipeline(steps)


def scores(model, test, **predict_params):
    proba = model.predict_proba(test.X, **predict_params)
    pred = model.classes_[proba.argmax(1)]
    out = {}
    for name, mask in (("overall", np.ones(len(test.y), bool)),
                       ("seen", np.isin(test.device, TRAIN_DEVICES)),
                       ("unseen", np.isin(test.device, UNSEEN_DEVICES))):
        out[name] = macro_accuracy(test.y[mask], pred[mask], labels=model.classes_)
        out[name + "_ll"] = dcase_log_loss(test.y[mask], proba[mask], labels=model.classes_)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15, help="student epochs (demo schedule: 15)")
    p.add_argument("--fine-tune-epochs", type=int, default=5)
    p.add_argument("--fine-tune-lr", type=float, default=0.001)
    p.add_argument("--data-root", help="a TAU22 folder (default: the generated replica)")
    p.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="1 seed, 2 epochs: checks the script runs")
    p.add_argument("--out", help="JSON results (default: WORK_DIR/bench_generalization.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.fine_tune_epochs = [0], 2, 1
    set_threads(args.threads)
    work = pathlib.Path(args.work_dir).expanduser()
    root = replica_root(args.data_root, work)
    cache = work / "feature-cache"
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    train25 = load_tau22(root, "train", fraction=25)
    print(f"{len(train.X)} training clips ({len(train25.X)} in the 25 % subset), "
          f"{len(test.X)} evaluation clips; seeds {args.seeds}; {args.epochs} epochs; "
          "64x26 features, hidden=18")

    configs = {
        "plain": dict(), "+FreqMixStyle": dict(fms=True), "+DIR": dict(dir_=True),
        "+both": dict(fms=True, dir_=True),
    }
    results = {name: [] for name in [*configs, "25 %", "general (seen)", "device-specific (seen)"]}
    t_start = time.perf_counter()
    for seed in args.seeds:
        for name, kw in configs.items():
            t0 = time.perf_counter()
            model = pipeline(root, cache, seed, args.epochs, **kw).fit(train.X, train.y)
            results[name].append(scores(model, test))
            print(f"seed {seed} {name:15s} {time.perf_counter() - t0:6.0f} s  "
                  f"unseen {100 * results[name][-1]['unseen']:.1f} %", flush=True)
            if name == "plain":
                general = model
        subset = pipeline(root, cache, seed, args.epochs).fit(train25.X, train25.y)
        results["25 %"].append(scores(subset, test))
        # device-specific fine-tuning of the plain model, judged on the seen devices
        specific = DeviceSpecificClassifier(
            general, fine_tune={"clf__max_epochs": args.fine_tune_epochs, "clf__lr": args.fine_tune_lr},
        ).fit(train.X, train.y)
        results["general (seen)"].append(scores(general, test))
        results["device-specific (seen)"].append(scores(specific, test))
        print(f"seed {seed} 25 % / device-specific done ({time.perf_counter() - t_start:.0f} s so far)",
              flush=True)

    rows = []
    for name, runs in results.items():
        rows.append([name, *(fmt_pm([r[k] for r in runs], 100) for k in ("overall", "seen", "unseen")),
                     fmt_pm([r["overall_ll"] for r in runs], 1, 3)])
    print()
    print(format_table(["configuration", "overall (%)", "seen (%)", "unseen s4-s6 (%)", "log-loss"], rows))
    print()

    def diffs(name, base, key):
        return [round(100 * (a[key] - b[key]), 1) for a, b in zip(results[name], results[base])]

    for name in ("+FreqMixStyle", "+DIR", "+both"):
        print(f"{name} - plain, unseen devices, per seed: {diffs(name, 'plain', 'unseen')} points")
    print(f"25 % - 100 % (plain), overall, per seed: {diffs('25 %', 'plain', 'overall')} points")
    print(f"device-specific - general, seen devices, per seed: "
          f"{diffs('device-specific (seen)', 'general (seen)', 'seen')} points")
    print(f"(total {time.perf_counter() - t_start:.0f} s)")
    out = pathlib.Path(args.out) if args.out else work / "bench_generalization.json"
    out.write_text(json.dumps(dict(config=vars(args), results=results), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
