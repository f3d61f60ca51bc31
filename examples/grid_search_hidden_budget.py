"""
Choosing the network width under the DCASE complexity budget
============================================================

What it shows
    A :class:`~sklearn.model_selection.GridSearchCV` over the width
    ``clf__hidden`` of the whole pipeline (front end + ``DwsCNNClassifier``),
    with :class:`~sklearn.model_selection.GroupKFold` on the 10-s recording
    ids (``load_tau22(...).recording``) so that the ten 1-s snippets of a
    recording never fall on both sides of a split, and a ``refit`` callable
    that picks the best mean validation score **among the candidates that
    fit the DCASE 2023 Task 1 budget**: at most 30 M MACs per inference and
    at most 128,000 bytes of float32 parameters (32,000 parameters).

    The budget is about the model that would be deployed, which runs on the
    paper's 1 x 256 x 51 log-mel input.  This demo trains on smaller
    features (64 x 26, or 32 x 26 with ``--fast``) to run quickly; on those
    the networks are smaller (the MACs scale with the input, and so does
    ``fc1``) and every width of the grid would fit, so the budget would never
    bite.  So each candidate's complexity is computed from its parameters
    for the *deployment* input shape: ``skasc.nn.DwsCNN(hidden=h,
    input_shape=(1, 256, 51))`` measured by
    ``skasc.complexity.complexity_report``.  At that shape hidden=18 (the
    paper's student: 31,260 parameters, 29,591,778 MACs) is the widest
    network that fits; hidden=24 (45,774 parameters, 45.3 M MACs) does not,
    however well it scores.

    The rule is written out below (``best_within_budget``) to show how it
    works; :class:`skasc.model_selection.BudgetRefit` packages the same rule
    with its limits, input shape and storage format as parameters
    (``refit=BudgetRefit()``).

    Validation scores use ``scoring="balanced_accuracy"``, which is the
    challenge's class-wise (macro-average) accuracy.  ``LogMel``'s
    ``memory`` cache means each recording's features are computed once, not
    once per fold and candidate.  Grouping by ``load_tau22(...).identifier``
    (the recording location) instead gives the stricter location-wise
    cross-validation of the official split.

How to run
    ``python examples/grid_search_hidden_budget.py``         widths 8, 12, 18, 24, 3 folds,
    64 x 26 features, 10 epochs: 13 trainings (12 for the search, 1 refit),
    roughly 10 minutes on a 2-core CPU; ``--n-jobs`` runs them in parallel.

    ``python examples/grid_search_hidden_budget.py --fast``  widths 6, 18, 24, 2 folds,
    tiny replica and 2 epochs: a few seconds (what the test-suite runs); the
    scores are then close to chance, so which width wins is noise, but the
    budget rule is applied the same way.

    ``--data-root DIR`` uses a TAU22 folder instead of the generated replica,
    ``--n-jobs N`` runs the fits in parallel.
"""

import argparse
import os
import tempfile

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skasc import DwsCNNClassifier, LogMel, RandomCrop, Reassembler, SpecAugment, complexity_report
from skasc.complexity import MAC_LIMIT, PARAM_MEMORY_LIMIT_BYTES
from skasc.datasets import SCENES, load_tau22, make_tau22
from skasc.metrics import macro_accuracy
from skasc.nn import DwsCNN

#: Input of the deployed model: the paper's 256 mel bands x 51 frames.
DEPLOY_SHAPE = (1, 256, 51)


def candidate_complexity(params, input_shape=DEPLOY_SHAPE, n_classes=len(SCENES)):
    """Complexity report of the network a GridSearchCV candidate would deploy.

    ``params`` is one entry of ``cv_results_["params"]``, e.g.
    ``{"clf__hidden": 18}``; parameters not in it keep DwsCNN's defaults.
    """
    module = DwsCNN(n_classes=n_classes, hidden=params.get("clf__hidden", 18),
                    linear_hidden=params.get("clf__linear_hidden", 100), input_shape=input_shape)
    return complexity_report(module, input_shape, mac_limit=MAC_LIMIT, param_limit_bytes=PARAM_MEMORY_LIMIT_BYTES)


def best_within_budget(cv_results, dtype="float32"):
    """``refit`` callable for GridSearchCV: the index of the candidate with the
    best mean test score among those whose deployed network fits both DCASE
    limits (MACs and ``dtype`` parameter memory).  Raises if none fits."""
    scores = np.asarray(cv_results["mean_test_score"], dtype=float)
    fits = np.array([candidate_complexity(p).fits_limits(dtype) for p in cv_results["params"]])
    allowed = np.flatnonzero(fits & ~np.isnan(scores))
    if len(allowed) == 0:
        raise ValueError("no candidate fits the DCASE complexity budget")
    return int(allowed[np.argmax(scores[allowed])])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny data, 3 widths, 2 folds, 2 epochs")
    parser.add_argument("--data-root", help="a TAU22 folder (real or replica); default: generate a replica")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "skasc-examples"),
                        help="where the replica and the feature cache go (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=None, help="GridSearchCV workers")
    args = parser.parse_args(argv)
    if args.fast:
        torch.set_num_threads(1)

    if args.data_root:
        root = args.data_root
    elif args.fast:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica-tiny"), n_cities=2, n_locations=1,
                          n_segments=1, devices=("a", "b", "s1", "s4"), random_state=0)
    else:
        root = make_tau22(os.path.join(args.workdir, "tau22-replica"), random_state=0)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    print(f"train: {len(train.X)} clips from {len(set(train.recording))} recordings")

    widths, n_splits, epochs, n_mels = ([6, 18, 24], 2, 2, 32) if args.fast else ([8, 12, 18, 24], 3, 10, 64)
    pipe = Pipeline([
        ("reassemble", Reassembler()),
        ("logmel", LogMel(n_mels=n_mels, n_fft=2048, win_length=1764, hop_length=1764,
                          memory=os.path.join(args.workdir, "feature-cache"))),
        ("crop", RandomCrop()),
        ("specaug", SpecAugment(freq_mask_width=4, time_mask_width=3)),
        ("clf", DwsCNNClassifier(max_epochs=epochs, random_state=0)),
    ])
    search = GridSearchCV(
        pipe,
        {"clf__hidden": widths},
        cv=GroupKFold(n_splits=n_splits),
        scoring="balanced_accuracy",  # = the DCASE class-wise accuracy
        refit=best_within_budget,
        n_jobs=args.n_jobs,
    )
    search.fit(train.X, train.y, groups=train.recording)

    # -- every candidate: validation score and deployed complexity -----------
    res = search.cv_results_
    unconstrained = int(np.nanargmax(res["mean_test_score"]))
    print(f"\ncomplexity at the deployment input {DEPLOY_SHAPE}; budget: {MAC_LIMIT:,} MACs, "
          f"{PARAM_MEMORY_LIMIT_BYTES:,} B of float32 parameters")
    print(f"{'hidden':>6} {'params':>8} {'float32 B':>10} {'MACs':>12}  {'budget':<6}  CV class-wise accuracy")
    for i, params in enumerate(res["params"]):
        cx = candidate_complexity(params)
        mark = "  <- chosen" if i == search.best_index_ else ""
        mark += "  (best unconstrained)" if i == unconstrained and i != search.best_index_ else ""
        print(f"{params['clf__hidden']:>6} {cx.total_params:>8,} {cx.param_bytes['float32']:>10,} "
              f"{cx.total_macs:>12,}  {'fits' if cx.fits_limits('float32') else 'over':<6}  "
              f"{100 * res['mean_test_score'][i]:5.1f} % +- {100 * res['std_test_score'][i]:4.1f}{mark}")

    best = search.best_estimator_  # refitted on the whole train split
    acc = macro_accuracy(test.y, best.predict(test.X))
    print(f"\nchosen: hidden={search.best_params_['clf__hidden']}; evaluate split class-wise accuracy "
          f"{100 * acc:.1f} %")
    print(f"as trained here (input {best.named_steps['clf'].input_shape_}): "
          f"{complexity_report(best).total_macs:,} MACs")
    print(f"as deployed (input {DEPLOY_SHAPE}):")
    print(candidate_complexity(search.best_params_))


if __name__ == "__main__":
    main()
