"""What the skasc classifiers share: the network classifier base and the estimator helpers.

:class:`NetworkClassifier` trains a torch network with skorch (per-batch
augmentation, checkpoints bound to a fingerprint, warm starts) and predicts
batch by batch; :class:`~skasc.DwsCNNClassifier`,
:class:`~skasc.DistilledStudent` and :class:`~skasc.PretrainedClassifier`
say which network and input.  Prediction and scoring are the contract of
:class:`~skasc._predict.SceneClassifierMixin`.  The helpers check training
targets and prediction inputs, drop a half-fitted model, and tell or keep a
fitted inner estimator (:func:`is_fitted`, :func:`clone_keeping_fitted`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sysconfig
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import Callback, ProgressBar
from skorch.dataset import Dataset

from ._featureset import as_tensor_windows
from ._files import write_atomically
from ._predict import SceneClassifierMixin, unflatten_rows
from ._allocator import reuse_freed_memory
from ._collapse import CollapseGuard, raise_if_collapsed
from ._training import (
    BatchDrawer,
    EpochCheckpoint,
    EpochSeed,
    SceneNet,
    SoftTargetCrossEntropy,
    check_device,
    cosine_lr,
    plain_module,
    resume_from_checkpoint,
    training_fingerprint,
)
from ._validation import check_batch_size, check_labels
from .preprocessing import as_feature_set

__all__ = [
    "NetworkClassifier",
    "POSITIVE_INT",
    "POSITIVE_REAL",
    "NON_NEGATIVE_REAL",
    "check_targets",
    "check_training_labels",
    "check_features_for",
    "fit_or_forget",
    "is_fitted",
    "clone_keeping_fitted",
    "batched_logits",
    "fast_batched_logits",
]

POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
# upper bound np.inf, closed on the right: inf and NaN are refused
POSITIVE_REAL = [Interval(Real, 0, np.inf, closed="neither")]
NON_NEGATIVE_REAL = [Interval(Real, 0, np.inf, closed="left")]


def check_targets(est, X, y):
    """Validate y against X; return (features, y as 1-D array)."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    features = as_feature_set(X)
    return features, check_training_labels(est, y, len(features))


def check_training_labels(est, y, n):
    """y as a 1-D array of ``n`` labels of at least two classes."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    y = check_labels(column_or_1d(y, warn=True))  # None/NaN/bytes/mixed labels named
    if len(y) != n:
        raise ValueError(f"X and y have different lengths: X has {n} rows, y has {len(y)}")
    check_classification_targets(y)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"{type(est).__name__} needs at least 2 classes in y; got 1 class: {np.unique(y)[0]!r}"
        )
    return y


def check_features_for(est, X):
    """Features for a fitted estimator, checked against the fitted input.

    A 2-D array is read as flattened clips of ``est.input_shape_`` (see
    :func:`~skasc._predict.unflatten_rows`).
    """
    features = as_feature_set(unflatten_rows(X, est.input_shape_))
    if features.shape[1] != est.n_features_in_ or features.feature_shape != est.input_shape_:
        raise ValueError(
            f"X has {features.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input "
            f"(feature shape {features.feature_shape} vs fitted {est.input_shape_})."
        )
    return features


def fit_or_forget(est, X, y):
    """``est._fit(X, y)``; if it raises (Ctrl-C included), every fitted
    attribute is dropped first: a fit that did not finish leaves no model."""
    try:
        return est._fit(X, y)
    except BaseException:
        for name in [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]:
            delattr(est, name)
        raise


def is_fitted(estimator):
    """Whether ``estimator`` is fitted (:func:`~sklearn.utils.validation.check_is_fitted`
    passes), as a bool."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def clone_keeping_fitted(estimator, param):
    """``clone(estimator)``, except that a fitted estimator held in parameter
    ``param`` is kept as it is (like :class:`~sklearn.frozen.FrozenEstimator`),
    so that a GridSearchCV over the other parameters does not refit it per
    candidate; an unfitted one is cloned as usual."""
    params = estimator.get_params(deep=False)
    inner = params.pop(param)
    if inner is not None and not isinstance(inner, FrozenEstimator) and not is_fitted(inner):
        inner = clone(inner)
    params = {k: clone(v, safe=False) for k, v in params.items()}
    return type(estimator)(**{param: inner}, **params)


def batched_logits(module, features, device, batch_size):
    """Logits of ``module`` (put in eval mode) over ``features``, batch by batch."""
    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            rows = np.arange(start, min(start + batch_size, len(features)))
            x = as_tensor_windows(features.windows(rows)).to(device, memory_format=torch.channels_last)
            out.append(module(x).float().cpu())
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy()


def fast_batched_logits(fast, features, batch_size):
    """Logits by the CPU fast path, ``batch_size`` clips materialised at a time."""
    out = [fast.logits(features.windows(np.arange(s, min(s + batch_size, len(features)))))
           for s in range(0, len(features), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


#: Sample-epochs (training clips x max_epochs) from which ``compile="auto"``
#: compiles.  Measured on 2 CPU cores at the paper's size (README,
#: ``bench_training.py --compile``): compiling costs ~48 s once and saves
#: ~27 % of each step (1.69x against 1.24x a hand-written loop per steady
#: epoch), ~1.3 ms per sample at ~200 samples/s, so it pays back after
#: ~36,000 sample-epochs; from 200,000 on the one-off cost is under a
#: fifth of what it saves.  The demo schedule (~1,300 clips x 5 epochs) stays
#: eager, the paper's (~140,000 x 600) compiles.
AUTO_COMPILE_SAMPLE_EPOCHS = 200_000


def compiler_available(device):
    """Whether ``torch.compile`` can build kernels for ``device`` here: a C++
    compiler and Python's headers on CPU (the kernels are built as a Python
    extension: with a compiler but no ``Python.h`` the first compiled batch
    would fail), Triton on CUDA."""
    kind = torch.device(device).type
    if kind == "cuda":
        return importlib.util.find_spec("triton") is not None
    if kind == "cpu":
        headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
        return headers.is_file() and any(
            shutil.which(c) for c in (os.environ.get("CXX") or "g++", "c++", "clang++") if c)
    return False


def use_compile(compile, n_samples, max_epochs, device):
    """The ``compile`` a fit uses: as given, or for ``"auto"`` whether the run
    is long enough to repay the compilation and a compiler is there."""
    if compile != "auto":
        return bool(compile)
    return n_samples * max_epochs >= AUTO_COMPILE_SAMPLE_EPOCHS and compiler_available(device)


class NetworkClassifier(SceneClassifierMixin, ClassifierMixin, BaseEstimator):
    """Training and inference shared by the skasc network classifiers.

    A subclass says which network it trains (:meth:`_net_spec`), how it
    turns ``X`` into a :class:`~skasc.FeatureSet` (:meth:`_as_features`),
    and may add work before training (:meth:`_before_training`); the
    rest -- the skorch net, per-batch augmentation, checkpoints bound to a
    fingerprint, warm starts, batched inference -- is here, once.
    """

    # what a teacher of this kind reads (see skasc._teachers)
    _input_kind = "features"

    # -- validation -----------------------------------------------------
    def _check_params_beyond_table(self):
        """What the constraint table cannot express; ValueError naming the parameter."""
        check_device(self.device)
        for i, cb in enumerate(self.callbacks or ()):
            obj = cb[1] if isinstance(cb, tuple) and len(cb) == 2 and isinstance(cb[0], str) else cb
            if not (isinstance(obj, Callback) or (isinstance(obj, type) and issubclass(obj, Callback))):
                raise ValueError(
                    f"callbacks[{i}] must be a skorch Callback or a (name, Callback) pair, got {cb!r}"
                )
        if self.checkpoint_dir is not None and Path(self.checkpoint_dir).exists() \
                and not Path(self.checkpoint_dir).is_dir():
            raise ValueError(
                f"checkpoint_dir {str(self.checkpoint_dir)!r} is a file, not a folder; "
                "pass a folder (it is created if missing)"
            )

    # -- training -------------------------------------------------------
    def _distillation(self):
        """Keyword arguments of SceneNet's distillation loss (none here)."""
        return {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on clips ``X`` (FeatureSet or array) with labels ``y``.

        Raises KeyboardInterrupt on Ctrl-C and FloatingPointError if the
        loss becomes non-finite, leaving the estimator unfitted.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames)
            Training clips (a FeatureSet carries the crops and masks to draw;
            a 2-D array ``(n_clips, frames)`` is one band per clip).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params_beyond_table()
        return fit_or_forget(self, X, y)

    def _fit(self, X, y):
        features, y = check_targets(self, self._as_features(X, y, training=True), y)
        start = self._warm_start_weights(features, y)
        if start is None:  # a fine-tuning run keeps the fitted classes (y may hold fewer)
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
        y_enc = self._encoder.transform(y).astype(np.int64)
        self.input_shape_ = features.feature_shape
        self._set_n_features(X, features)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        distillation = self._distillation()
        checkpoint = self._checkpoint_place(features, y_enc, start)
        rows = np.arange(len(features))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net_ = self._build_net(features, len(self.classes_), seed, distillation, checkpoint)
            self.net_.initialize()
            self._after_initialize(self.net_)
            if getattr(self, "standardize", False):
                with np.errstate(over="ignore", invalid="ignore"):  # refused just below
                    mean, std = features.band_statistics()
                if not (np.isfinite(mean).all() and np.isfinite(std).all()):
                    raise ValueError(
                        f"X holds values too large to standardize (largest magnitude "
                        f"{features.abs_max():.3g}): the band statistics overflow float32; "
                        "check the features' scale"
                    )
                plain_module(self.net_.module_).set_input_normalization(mean, std)
            if start is not None:  # fine-tuning: the fitted weights and standardisation
                plain_module(self.net_.module_).load_state_dict(start)
            done = 0
            if checkpoint is not None and checkpoint[0].exists():
                finished = resume_from_checkpoint(self.net_, *checkpoint)
                done = self.max_epochs if finished else len(self.net_.history)
                if self.verbose:
                    print(f"resuming from {checkpoint[0]}: {len(self.net_.history)} of "
                          f"{self.max_epochs} epochs done", flush=True)
            if done < self.max_epochs:
                # CPU only: CUDA tensors come from torch's own caching allocator
                with reuse_freed_memory(enabled=check_device(self.device).type == "cpu"):
                    self._before_training(features, checkpoint)
                    self.net_.partial_fit(rows, y_enc, epochs=self.max_epochs - done)
            # also a run too short for the guard to stop, or a resumed one
            raise_if_collapsed(self.net_)
        self.net_.iterator_train__collate_fn.release()
        # the network itself, not a torch.compile wrapper (which neither
        # pickles nor runs skasc's inference paths)
        self.net_.module_ = plain_module(self.net_.module_)
        self.module_ = self.net_.module_.eval()
        return self

    def _before_training(self, features, checkpoint):
        """Work done only when epochs remain to train (none here)."""

    # -- hooks: what a subclass's network and input need ------------------
    def _as_features(self, X, y=None, training=False):
        """``X`` as the FeatureSet the network trains on (``training``) or
        predicts from."""
        return as_feature_set(X)

    def _predict_features(self, X):
        """Features of ``X`` checked against the fitted input."""
        return check_features_for(self, X)

    def _net_spec(self, features, n_classes):
        """``module`` and ``module__*`` keyword arguments of the skorch net."""
        raise NotImplementedError

    def _set_n_features(self, X, features):
        """Set ``n_features_in_``: here the width of the flattened features."""
        self.n_features_in_ = features.shape[1]

    def _after_initialize(self, net):
        """Called once the skorch net is initialised, before any warm start or
        resumed checkpoint is loaded (e.g. to load pretrained weights)."""

    def _fast_predictor(self):
        """A fitted :class:`~skasc._inference.FastPredictor`, or None (eager)."""
        return None

    def _warm_start_weights(self, features, y):
        """The fitted network's state to continue from, or None (a new initialisation)."""
        if not (self.warm_start and hasattr(self, "module_")):
            return None
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"warm_start=True continues the fitted network, whose classes are "
                f"{self.classes_.tolist()}, but y has other classes too: {unknown.tolist()}")
        if features.feature_shape != self.input_shape_:
            raise ValueError(
                f"warm_start=True continues the fitted network, whose input shape is "
                f"{self.input_shape_}, but X has {features.feature_shape}")
        return {k: v.detach().clone() for k, v in plain_module(self.module_).state_dict().items()}

    def _fingerprint_arrays(self):
        """Arrays besides the data and parameters that a checkpoint is bound to."""
        return ()

    def _checkpoint_place(self, features, y_enc, start=None):
        """(path of the checkpoint file, fingerprint) of this fit, or None.

        The file lives in a subfolder of checkpoint_dir named after the
        fingerprint of the data and parameters, so only the very same
        training is ever resumed.
        """
        if self.checkpoint_dir is None:
            return None
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("callbacks", "verbose", "checkpoint_dir", "teacher", "device", "compile")}
        about = dict(estimator=type(self).__name__, params=params, n_rows=len(y_enc),
                     classes=[repr(c) for c in self.classes_], input_shape=list(self.input_shape_))
        text = json.dumps(about, sort_keys=True, default=repr)
        arrays = list(self._fingerprint_arrays())
        if start is not None:  # a fine-tuning run is bound to the weights it starts from
            arrays += [t.detach().cpu().reshape(-1).view(torch.uint8).numpy() for t in start.values()]
        digest = training_fingerprint(features, y_enc, text, arrays)
        folder = Path(self.checkpoint_dir) / digest
        folder.mkdir(parents=True, exist_ok=True)
        about_file = folder / "about.json"  # for people looking for a run's folder
        if not about_file.exists():
            text = json.dumps(about, sort_keys=True, indent=1, default=repr)
            write_atomically(about_file, lambda tmp: tmp.write_text(text))
        return folder / "checkpoint.pt", digest

    def _build_net(self, features, n_classes, seed, distillation, checkpoint=None):
        drawer = BatchDrawer(features, n_classes, self.mixup_alpha, seed, device=self.device)
        generator = torch.Generator()
        callbacks = [("epoch_seed", EpochSeed(drawer, generator)),
                     ("collapse_guard", CollapseGuard())]
        if self.lr_schedule == "cosine":
            callbacks.append(("cosine_lr", cosine_lr(self.max_epochs)))
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        callbacks += list(self.callbacks or [])
        if checkpoint is not None:
            # last: a user callback that ends the epoch (or restores the best
            # weights at the end of training) acts before the state is saved
            callbacks.append(("skasc_checkpoint", EpochCheckpoint(*checkpoint)))
        silence = {} if self.verbose else {"callbacks__print_log": None}
        return SceneNet(
            **self._net_spec(features, n_classes),
            criterion=SoftTargetCrossEntropy,
            optimizer=torch.optim.Adam,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            iterator_train__collate_fn=drawer,
            dataset=Dataset,
            callbacks=callbacks,
            device=self.device,
            compile=use_compile(self.compile, len(features), self.max_epochs, self.device),
            # one compiled graph per batch size (a full batch, the last one)
            # rather than a dynamic-shape graph that runs slower
            compile__dynamic=False,
            verbose=int(bool(self.verbose)),
            **distillation,
            **silence,
        )

    # -- inference ------------------------------------------------------
    def predict_logits(self, X, batch_size=512):
        """The network's logits for each clip, one column per class.

        :meth:`decision_function` gives the same scores in scikit-learn's
        shape, which for two classes is one column; this method always
        gives every class's logit (what distillation and export use).

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames) or (n_clips, bands * frames)
            A 2-D array holds each clip's features flattened, as the
            FeatureSet's array view (see :class:`~skasc._predict.SceneClassifierMixin`).
        batch_size : int, default=512
            Clips computed at a time.

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float32
            Logits; their softmax is :meth:`predict_proba`.
        """
        check_is_fitted(self, "module_")
        batch_size = check_batch_size(batch_size)
        features = self._predict_features(X)
        fast = self._fast_predictor()
        if fast is not None:  # CPU, no forward hooks
            return fast_batched_logits(fast, features, batch_size)
        return batched_logits(self.module_, features, self.device, batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
