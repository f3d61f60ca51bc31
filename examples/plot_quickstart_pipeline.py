"""
Quick start: the paper's front end and network in one scikit-learn Pipeline
===========================================================================

What it shows
    The whole DCASE 2023 Task 1 recipe of the seed paper as an ordinary
    :class:`sklearn.pipeline.Pipeline` -- ``Reassembler`` (each 1-s clip
    learns its 10-s recording), ``LogMel`` (256 x 51 log-mel, computed once
    per recording and cached), ``RandomCrop`` and ``SpecAugment`` (re-drawn
    for every batch of every epoch) and ``DwsCNNClassifier`` (the 31,260
    parameter network of Table 1, trained with mixup) -- fitted on the
    train split of a generated TAU22 replica, scored on its evaluate split
    (class-wise accuracy, also per device), and the network's DCASE
    complexity report.

How to run
    ``python examples/plot_quickstart_pipeline.py``         paper features (256 x 51),
    hidden=18, 30 epochs on the default replica (1,300 training clips): about
    40 s per epoch on a 2-core CPU, so some 20 minutes; ``--epochs`` changes
    the count, ``--device cuda`` trains on a GPU.

    ``python examples/plot_quickstart_pipeline.py --fast``  tiny replica, 32 x 26
    features, 3 epochs: a few seconds (what the test-suite runs).

    ``--data-root /path/to/TAU-urban-acoustic-scenes-2022-mobile-development``
    uses the real data set instead of the replica.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from skasc import DwsCNNClassifier, LogMel, RandomCrop, Reassembler, SpecAugment, complexity_report
from skasc.datasets import load_tau22, make_tau22
from skasc.metrics import device_report, format_device_report, macro_accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny data, small features, few epochs")
    parser.add_argument("--data-root", help="a TAU22 folder (real or replica); default: generate a replica")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skasc-examples"),
                        help="where the replica and the feature cache go (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 30, 3 with --fast)")
    args = parser.parse_args(argv)
    if args.fast:
        torch.set_num_threads(1)

    # -- data: file paths and labels, one row per 1-s clip ------------------
    if args.data_root:
        root = args.data_root
    elif args.fast:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica-tiny"), n_cities=2, n_locations=1,
                          n_segments=1, devices=("a", "b", "s1", "s4"), random_state=0)
    else:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica"), random_state=0)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    print(f"data: {root}")
    print(f"train: {len(train.X)} clips, evaluate: {len(test.X)} clips")

    # -- the pipeline -------------------------------------------------------
    if args.fast:  # smaller features (32 mel bands, 40-ms hop: 32 x 26), tiny network
        logmel = LogMel(n_mels=32, n_fft=2048, win_length=1764, hop_length=1764)
        specaug = SpecAugment(freq_mask_width=3, time_mask_width=2)
        clf = DwsCNNClassifier(hidden=8, max_epochs=args.epochs or 3, random_state=0, device=args.device)
    else:  # the paper's: 256 x 51 log-mel, hidden=18 (30 epochs here, 600 in the paper)
        logmel = LogMel()
        specaug = SpecAugment()
        clf = DwsCNNClassifier(hidden=18, max_epochs=args.epochs or 30, random_state=0, device=args.device,
                               verbose=1)
    logmel.set_params(memory=os.path.join(args.workdir, "feature-cache"))
    pipe = Pipeline([
        ("reassemble", Reassembler()),  # each clip learns its 10-s recording
        ("logmel", logmel),             # features once per recording (cached on disk)
        ("crop", RandomCrop()),         # random 1-s window of the recording, new every batch
        ("specaug", specaug),           # one frequency and one time mask, new every batch
        ("clf", clf),
    ])

    t0 = time.perf_counter()
    pipe.fit(train.X, train.y)  # rows stay 1-s clips: y stays aligned
    print(f"fit: {time.perf_counter() - t0:.1f} s")

    # -- evaluation on the 1-s clips as they are ----------------------------
    proba = pipe.predict_proba(test.X)
    classes = pipe.classes_
    pred = classes[np.argmax(proba, axis=1)]
    print(f"accuracy (pipe.score): {pipe.score(test.X, test.y):.3f}")
    print(f"class-wise accuracy: {macro_accuracy(test.y, pred):.3f} (chance {1 / len(classes):.3f})")
    report = device_report(test.y, pred, test.device, proba=proba, labels=classes)
    print(format_device_report(report))

    # -- complexity as the DCASE 2023 tool counts it ------------------------
    print()
    print(complexity_report(pipe))


if __name__ == "__main__":
    main()
