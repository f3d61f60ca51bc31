"""
Knowledge distillation from a fused teacher ensemble
====================================================

What it shows
    The paper's Section 3.3: several wide networks (the *teachers*) are
    trained and fused by averaging their outputs (``EnsembleTeacher``); a
    small network (the *student*) is then trained on a weighted sum of the
    hard loss (true, mixup-mixed labels) and the soft loss (the fused
    teacher's outputs at temperature 2, weight 0.5) by ``DistilledStudent``.
    The same student trained without distillation is the baseline.

    The log-mel features are computed **once** and shared by all models:
    ``Pipeline(steps[:-1])`` is the front end without the classifier.  Its
    ``fit_transform`` gives the *training* view (each clip with its 10-s
    recording and the crop/SpecAugment augmentations attached, re-drawn by
    each classifier for every batch), its ``transform`` the *test* view
    (each 1-s clip alone, no augmentation).  The already-fitted ensemble is
    passed as ``teacher``: ``DistilledStudent`` uses a fitted teacher frozen
    and never retrains it.

How to run
    ``python examples/distillation_from_ensemble.py``         64 x 26 features, three
    hidden=32 teachers (10 epochs) and two hidden=18 students (20 epochs):
    roughly 10 minutes on a 2-core CPU, less with ``--device cuda``.

    ``python examples/distillation_from_ensemble.py --fast``  tiny replica and models,
    a few seconds (what the test-suite runs).  On so little data and so few
    epochs the accuracies are close to chance and their order is noise.

    ``--data-root DIR`` uses a TAU22 folder (real or replica) instead of
    generating one; ``--device cuda`` trains on a GPU.
"""

import argparse
import os
import tempfile
import time

import torch
from sklearn.pipeline import Pipeline

from skasc import (
    DistilledStudent,
    DwsCNNClassifier,
    EnsembleTeacher,
    LogMel,
    RandomCrop,
    Reassembler,
    SpecAugment,
    complexity_report,
)
from skasc.datasets import load_tau22, make_tau22
from skasc.metrics import macro_accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny data and models, few epochs")
    parser.add_argument("--data-root", help="a TAU22 folder (real or replica); default: generate a replica")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skasc-examples"),
                        help="where the replica and the feature cache go (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = parser.parse_args(argv)
    if args.fast:
        torch.set_num_threads(1)

    if args.fast:
        sizes = dict(n_mels=32, teachers=2, teacher_hidden=12, teacher_epochs=3, student_hidden=6,
                     student_epochs=3)
    else:
        sizes = dict(n_mels=64, teachers=3, teacher_hidden=32, teacher_epochs=10, student_hidden=18,
                     student_epochs=20)

    if args.data_root:
        root = args.data_root
    elif args.fast:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica-tiny"), n_cities=2, n_locations=1,
                          n_segments=1, devices=("a", "b", "s1", "s4"), random_state=0)
    else:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica"), random_state=0)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    print(f"train: {len(train.X)} clips, evaluate: {len(test.X)} clips")

    common = dict(device=args.device, batch_size=64, lr=0.01)
    student_kw = dict(hidden=sizes["student_hidden"], max_epochs=sizes["student_epochs"], random_state=0,
                      **common)

    # -- the plain student's pipeline; its front end is fitted once ----------
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(n_mels=sizes["n_mels"], n_fft=2048, win_length=1764, hop_length=1764,
                          memory=os.path.join(args.workdir, "feature-cache"))),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(freq_mask_width=4, time_mask_width=3)),
        ("clf", DwsCNNClassifier(**student_kw)),
    ])
    front = Pipeline(pipe.steps[:-1])       # the same step objects, without the classifier
    F_train = front.fit_transform(train.X)  # training view: recordings + augmentations
    F_test = front.transform(test.X)        # test view: every 1-s clip alone
    print(f"features: {F_train!r}")
    print(f"          {F_test!r}")

    # -- the fused teacher: members with different seeds, averaged logits ----
    t0 = time.perf_counter()
    members = [DwsCNNClassifier(hidden=sizes["teacher_hidden"], max_epochs=sizes["teacher_epochs"],
                                random_state=seed, **common) for seed in range(sizes["teachers"])]
    ensemble = EnsembleTeacher(members, fusion="logits").fit(F_train, train.y)
    print(f"teacher ensemble trained in {time.perf_counter() - t0:.1f} s")

    # -- students: with and without distillation, same seed and schedule -----
    t0 = time.perf_counter()
    student = DistilledStudent(teacher=ensemble, temperature=2.0, soft_weight=0.5, **student_kw)
    student.fit(F_train, train.y)
    assert student.teacher_ is ensemble  # used frozen, not retrained
    plain = pipe.named_steps["clf"].fit(F_train, train.y)
    print(f"students trained in {time.perf_counter() - t0:.1f} s")

    # -- results on the evaluate split --------------------------------------
    print()
    print(f"{'model':<28} {'params':>9} {'MACs':>12}  class-wise accuracy")
    rows = [(f"teacher {k + 1}", m) for k, m in enumerate(ensemble.estimators_)]
    rows += [("teacher ensemble (fused)", ensemble), ("student without KD", plain),
             ("student with KD", student)]
    for name, model in rows:
        cx = complexity_report(model)
        acc = macro_accuracy(test.y, model.predict(F_test))
        print(f"{name:<28} {cx.total_params:>9,} {cx.total_macs:>12,}  {100 * acc:5.1f} %")
    print(f"(chance: {100 / len(student.classes_):.1f} %)")

    # -- deployment: the fitted front end + the distilled student, from paths --
    deployed = Pipeline(front.steps + [("clf", student)])  # crop/SpecAugment: identity at predict time
    acc = macro_accuracy(test.y, deployed.predict(test.X))
    print(f"deployed pipeline (file paths in): class-wise accuracy {100 * acc:.1f} %")


if __name__ == "__main__":
    main()
