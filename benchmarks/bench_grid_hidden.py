"""GridSearchCV over the network width, accuracy against complexity.

Searches ``clf__hidden`` with GroupKFold over recordings on the built-in
replica (or ``--data-root``), picks the best width within the DCASE 2023
Task 1 budget with :class:`skasc.model_selection.BudgetRefit` (complexity of
the deployed 1x256x51 network), scores it on the evaluate split, and plots
cross-validated accuracy against MACs and parameters with the limits drawn in.

    python benchmarks/bench_grid_hidden.py --out grid_hidden.png
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skasc import DwsCNNClassifier, LogMel, RandomCrop, Reassembler, SpecAugment
from skasc.complexity import MAC_LIMIT, PARAM_MEMORY_LIMIT_BYTES
from skasc.datasets import load_tau22, make_tau22
from skasc.model_selection import BudgetRefit


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root")
    ap.add_argument("--work-dir", default=str(Path.home() / ".cache" / "skasc"))
    ap.add_argument("--hidden", type=int, nargs="+", default=[6, 12, 18, 20, 24])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="grid_hidden.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    work = Path(args.work_dir)
    root = args.data_root or make_tau22(work / "tau22-replica", random_state=0)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(n_mels=64, n_fft=2048, win_length=1764, hop_length=1764,
                          memory=str(work / "feature-cache"))),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(4, 3)),
        ("clf", DwsCNNClassifier(max_epochs=args.epochs, random_state=0)),
    ])
    rule = BudgetRefit()
    search = GridSearchCV(pipe, {"clf__hidden": args.hidden}, cv=GroupKFold(args.folds), refit=rule)
    t0 = time.perf_counter()
    search.fit(train.X, train.y, groups=train.recording)
    elapsed = time.perf_counter() - t0

    scores = search.cv_results_["mean_test_score"]
    print(f"GridSearchCV over hidden={args.hidden}, {args.folds} folds grouped by recording, "
          f"{args.epochs} epochs, {elapsed:.0f} s")
    print(f"{'hidden':>6}  {'params':>8}  {'MACs (1x256x51)':>16}  {'fits':>5}  {'CV accuracy':>11}")
    for c, s in zip(rule.complexity_, scores):
        print(f"{c['hidden']:>6}  {c['params']:>8,}  {c['macs']:>16,}  {str(c['fits']):>5}  {100 * s:>10.1f}%")
    best = search.best_params_["clf__hidden"]
    print(f"best within budget: hidden={best}; evaluate accuracy {100 * search.score(test.X, test.y):.1f}%")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    macs = np.array([c["macs"] for c in rule.complexity_]) / 1e6
    kbytes = np.array([c["param_bytes"] for c in rule.complexity_]) / 1e3
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x, limit, label in ((axes[0], macs, MAC_LIMIT / 1e6, "MMACs per clip (1x256x51)"),
                                (axes[1], kbytes, PARAM_MEMORY_LIMIT_BYTES / 1e3, "parameter memory, float32 (kB)")):
        ax.plot(x, 100 * scores, "o-")
        for h, xi, s in zip(args.hidden, x, scores):
            ax.annotate(f"h={h}", (xi, 100 * s), textcoords="offset points", xytext=(4, 4))
        ax.axvline(limit, color="red", linestyle="--", label="DCASE 2023 limit")
        ax.set_xlabel(label)
        ax.legend()
    axes[0].set_ylabel("CV accuracy (%)")
    fig.suptitle(f"Accuracy vs complexity; best within budget: hidden={best}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    Path(args.out).with_suffix(".json").write_text(json.dumps(dict(
        hidden=args.hidden, cv_accuracy=scores.tolist(), complexity=rule.complexity_, best_hidden=best),
        indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
