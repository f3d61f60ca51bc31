"""skorch-based classifiers: the paper's network, its teacher ensemble and
the distilled student, with the scikit-learn classifier API."""

from __future__ import annotations

import copy
import json
import os
import pickle
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import Callback, ProgressBar
from skorch.dataset import Dataset

from ._featureset import AudioSet, FeatureSet, as_tensor_windows
from ._inference import cached_fast_predictor
from ._networks import held_networks
from ._ops import fuse_logits, softmax
from ._teachers import (
    OnDemandTeacherOutputs,
    check_scores_available,
    check_teacher_rate,
    column_order,
    is_network_teacher,
    reads_audio,
    teacher_input,
    teacher_logits_at,
    teacher_scores,
    unwrap,
)
from ._training import (
    BatchDrawer,
    EpochCheckpoint,
    EpochSeed,
    FusedTeacher,
    SceneNet,
    SoftTargetCrossEntropy,
    TeacherOutputs,
    check_device,
    cosine_lr,
    plain_module,
    resume_from_checkpoint,
    reuse_freed_memory,
    precomputed_teacher_outputs,
    read_teacher_logits,
    teacher_positions,
    training_fingerprint,
)
from ._validation import check_batch_size, check_known_labels, check_labels
from .nn import DwsCNN
from .preprocessing import as_feature_set

__all__ = ["DwsCNNClassifier", "EnsembleTeacher", "DistilledStudent"]


def _check_targets(est, X, y):
    """Validate y against X; return (features, y as 1-D array)."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    features = as_feature_set(X)
    return features, _check_labels(est, y, len(features))


def _n_rows(X):
    return len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]


def _check_labels(est, y, n):
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


def _check_features_for(est, X):
    """Features for a fitted estimator, checked against the fitted input."""
    features = as_feature_set(X)
    if features.shape[1] != est.n_features_in_ or features.feature_shape != est.input_shape_:
        raise ValueError(
            f"X has {features.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input "
            f"(feature shape {features.feature_shape} vs fitted {est.input_shape_})."
        )
    return features


def _fit_or_forget(est, X, y):
    """``est._fit(X, y)``; if it raises (Ctrl-C included), every fitted
    attribute is dropped first: a fit that did not finish leaves no model."""
    try:
        return est._fit(X, y)
    except BaseException:
        for name in [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]:
            delattr(est, name)
        raise


_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
# upper bound np.inf, closed on the right: inf and NaN are refused
_POSITIVE_REAL = [Interval(Real, 0, np.inf, closed="neither")]
_NON_NEGATIVE_REAL = [Interval(Real, 0, np.inf, closed="left")]


class _SceneClassifierMixin:
    """Prediction and scoring shared by the three classifiers."""

    def predict_proba(self, X):
        """Class probabilities of each clip.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames), or audio rows
            The clips, as ``fit`` took them (audio rows for
            :class:`~skasc.PretrainedClassifier`).

        Returns
        -------
        ndarray of shape (n_clips, n_classes)
            The softmax of :meth:`predict_logits`.
        """
        return softmax(self.predict_logits(X))

    def predict(self, X):
        """Most probable scene of each clip.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames), or audio rows
            The clips, as ``fit`` took them (audio rows for
            :class:`~skasc.PretrainedClassifier`).

        Returns
        -------
        ndarray of shape (n_clips,)
            The class of the largest logit (:meth:`predict_logits`).
        """
        logits = self.predict_logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def decision_function(self, X):
        """Raw scores of each clip, in scikit-learn's shape.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames), or audio rows
            The clips, as ``fit`` took them (audio rows for
            :class:`~skasc.PretrainedClassifier`).

        Returns
        -------
        ndarray of shape (n_clips, n_classes), or (n_clips,) for two classes
            The logits (:meth:`predict_logits`).  With two classes,
            scikit-learn's convention: the logit of ``classes_[1]`` minus that
            of ``classes_[0]``, positive where :meth:`predict` gives
            ``classes_[1]``.
        """
        logits = self.predict_logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def score(self, X, y, sample_weight=None):
        """Accuracy; labels the model never saw raise instead of counting as errors.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames), or audio rows
            The clips, as ``fit`` took them (audio rows for
            :class:`~skasc.PretrainedClassifier`).
        y : array-like of shape (n_clips,)
            True scene labels, all among ``classes_``.
        sample_weight : array-like of shape (n_clips,), default=None

        Returns
        -------
        float
            Fraction of clips predicted correctly (weighted).
        """
        check_is_fitted(self)
        y = column_or_1d(y)
        check_known_labels(y, self.classes_)
        return super().score(X, y, sample_weight=sample_weight)


class _NetworkClassifier(_SceneClassifierMixin, ClassifierMixin, BaseEstimator):
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
            Training clips (a FeatureSet carries the crops and masks to draw).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params_beyond_table()
        return _fit_or_forget(self, X, y)

    def _fit(self, X, y):
        features, y = _check_targets(self, self._as_features(X, y, training=True), y)
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
                        f"{np.abs(features.store).max():.3g}): the band statistics overflow float32; "
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
        return _check_features_for(self, X)

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
            tmp = folder / f".about.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(about, sort_keys=True, indent=1, default=repr))
            os.replace(tmp, about_file)
        return folder / "checkpoint.pt", digest

    def _build_net(self, features, n_classes, seed, distillation, checkpoint=None):
        drawer = BatchDrawer(features, n_classes, self.mixup_alpha, seed, device=self.device)
        generator = torch.Generator()
        callbacks = [("epoch_seed", EpochSeed(drawer, generator))]
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
            compile=self.compile,
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
        X : FeatureSet or array of shape (n_clips, bands, frames)
        batch_size : int, default=512
            Clips computed at a time.

        Returns
        -------
        ndarray of shape (n_clips, n_classes)
            Logits; their softmax is :meth:`predict_proba`.
        """
        check_is_fitted(self, "module_")
        batch_size = check_batch_size(batch_size)
        features = self._predict_features(X)
        fast = self._fast_predictor()
        if fast is not None:  # CPU, no forward hooks
            return _fast_batched_logits(fast, features, batch_size)
        return _batched_logits(self.module_, features, self.device, batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags



class DwsCNNClassifier(_NetworkClassifier):
    """The paper's depthwise-separable CNN as a scikit-learn classifier.

    Trains :class:`skasc.nn.DwsCNN` with skorch on the features of a
    :class:`~skasc.LogMel` step (or on plain arrays of shape (n, bands,
    frames)), following the paper's recipe: Adam, learning rate 0.01
    decaying to 0 over the epochs (cosine schedule; the paper says only
    "gradually decreased"), batch 64, mixup with lambda ~ Beta(0.5, 0.5),
    plus the crops and SpecAugment masks attached by :class:`~skasc.RandomCrop`
    and :class:`~skasc.SpecAugment`, re-drawn for every batch of every epoch.

    Parameters
    ----------
    hidden : int, default=18
        Channels of every convolution (18: the paper's student, 31,260
        parameters at 256x51 input; 256: its teachers).
    linear_hidden : int, default=100
        Width of the first Linear layer.
    max_epochs : int, default=200
        Training epochs (the paper trains teachers 200, the student 600).
    batch_size : int, default=64
    lr : float, default=0.01
        Initial Adam learning rate.
    lr_schedule : {"cosine", None}, default="cosine"
        Decay of the learning rate over the epochs; None keeps it constant.
    weight_decay : float, default=0.0
    mixup_alpha : float, default=0.5
        Mixup's Beta parameter; 0 disables mixup.
    standardize : bool, default=True
        Standardise each input band with the mean and standard deviation of
        the training features (stored as buffers of the network: no extra
        parameters or MACs).  The paper does not say how its inputs were
        scaled; without this, raw log-mel values (around -20 dB, spread
        ~15 dB) make wide networks diverge at the paper's lr of 0.01.
    device : str, default="cpu"
        Torch device, e.g. "cuda".
    compile : bool, default=False
        Train a ``torch.compile``-d network (skorch's ``compile=True``, one
        graph per batch size).  The compiled training step fuses the
        BatchNorm, ReLU and residual passes and runs faster than eager
        (``benchmarks/bench_training.py --compile``; figures in the README),
        after a one-off compilation of about a minute on a 2-core CPU
        (cached on disk by torch for later processes): worth it for long
        runs, not for a few epochs.  It needs a C++ compiler on CPU.  Each
        step equals eager's up to floating-point noise (which Adam amplifies
        over a run like any change of summation order); the fitted
        ``module_`` is the plain network, and the checkpoint fingerprint
        ignores this parameter.  Untested on GPUs.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, as ``(name, callback)`` pairs or callbacks.
    warm_start : bool, default=False
        If True and the classifier is already fitted, ``fit`` continues from
        the fitted network's weights (and its input standardisation) instead
        of a new initialisation: a fine-tuning run of ``max_epochs`` epochs
        with its own optimizer and learning-rate schedule, on the new data
        (scikit-learn's meaning of ``warm_start``).  The classes and input
        shape must be the fitted ones.  A checkpoint of such a run is bound
        to the starting weights too.  Used by
        :class:`~skasc.device_specific.DeviceSpecificClassifier`.
    checkpoint_dir : str or path, default=None
        If set, the network, optimizer and history are saved after every
        finished epoch in ``checkpoint_dir/<fingerprint>/checkpoint.pt``
        (one file, replaced atomically), where ``<fingerprint>`` is a digest
        of the training data (the feature frames, which rows use which
        recording and window, the attached augmentations, the labels) and of
        the parameters (all but ``callbacks``, ``verbose``, ``device``, ``compile`` and
        ``checkpoint_dir``; a student's also covers its teacher's weights).
        A ``fit`` resumes only a checkpoint with the same fingerprint and
        trains only the remaining epochs; a fit on other data or with other
        parameters trains afresh in its own subfolder, so every fit of a
        cross-validation or grid search keeps its own checkpoint.  With an
        integer ``random_state`` the resumed run ends with exactly the
        weights of an uninterrupted one (crops, masks, mixup and batch order
        are seeded per epoch, the learning rate is a function of the epoch).
        A checkpoint file that cannot be read raises ValueError naming it.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, batch order, crops, masks and mixup.
        The same integer gives the same predictions on CPU.
    verbose : int, default=0
        1: a line per epoch; 2: also a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray
    n_features_in_ : int
    input_shape_ : tuple
        (channels, bands, frames) of the network's input.
    module_ : DwsCNN
        The trained network (in eval mode).
    net_ : skorch.NeuralNet
        The skorch net that trained it (history in ``net_.history``).

    Notes
    -----
    ``fit`` either trains all ``max_epochs`` epochs (or until a skorch
    ``EarlyStopping`` callback ends training) or raises: Ctrl-C
    (KeyboardInterrupt) propagates, and a training loss that becomes NaN or
    infinite raises FloatingPointError naming the epoch and batch.  Either
    way the estimator is left unfitted (with ``checkpoint_dir``, the last
    finished epoch stays saved for the next ``fit`` to resume).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8, 12)).astype("float32")
    >>> y = np.repeat(["park", "bus"], 20)
    >>> X[y == "park", :4] += 2.0
    >>> clf = DwsCNNClassifier(hidden=4, max_epochs=5, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).tolist()
    ['park', 'park']
    """

    def __init__(
        self, hidden=18, *, linear_hidden=100, max_epochs=200, batch_size=64, lr=0.01,
        lr_schedule="cosine", weight_decay=0.0, mixup_alpha=0.5, standardize=True,
        device="cpu", compile=False, callbacks=None, warm_start=False, checkpoint_dir=None,
        random_state=None, verbose=0,
    ):
        self.hidden = hidden
        self.linear_hidden = linear_hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.mixup_alpha = mixup_alpha
        self.standardize = standardize
        self.device = device
        self.compile = compile
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = {
        "hidden": _POSITIVE_INT,
        "linear_hidden": _POSITIVE_INT,
        "max_epochs": _POSITIVE_INT,
        "batch_size": _POSITIVE_INT,
        "lr": _POSITIVE_REAL,
        "lr_schedule": [StrOptions({"cosine"}), None],
        "weight_decay": _NON_NEGATIVE_REAL,
        "mixup_alpha": [*_NON_NEGATIVE_REAL, None],
        "standardize": ["boolean"],
        "device": [str, torch.device],
        "compile": ["boolean"],
        "callbacks": [list, tuple, None],
        "warm_start": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # -- what is specific to this network (hooks of _NetworkClassifier) -----
    def _net_spec(self, features, n_classes):
        return dict(module=DwsCNN, module__n_classes=n_classes, module__hidden=self.hidden,
                    module__input_shape=features.feature_shape,
                    module__linear_hidden=self.linear_hidden)

    def _fast_predictor(self):
        return cached_fast_predictor(self, [self.module_], self.input_shape_, device=self.device)


def _batched_logits(module, features, device, batch_size):
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


def _fast_batched_logits(fast, features, batch_size):
    """Logits by the CPU fast path, ``batch_size`` clips materialised at a time."""
    out = [fast.logits(features.windows(np.arange(s, min(s + batch_size, len(features)))))
           for s in range(0, len(features), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _fit_member(estimator, X, y, n_threads):
    if n_threads:
        torch.set_num_threads(n_threads)
    return estimator.fit(X, y)


class EnsembleTeacher(_SceneClassifierMixin, ClassifierMixin, BaseEstimator):
    """Average of several classifiers, the paper's fused teacher.

    Members are usually skasc networks (the paper's four DwsCNNs), whose
    logits are fused in one fast pass; any scikit-learn classifier with
    ``predict_proba`` or ``decision_function`` may join them, e.g. a
    :class:`~skasc.PretrainedClassifier` or a Pipeline with its own front
    end.  Each member reads what it needs of ``X`` (a member that reads
    audio gets the audio behind a :class:`~skasc.FeatureSet`, see
    :class:`~skasc.AudioLink`), and its columns are matched to the
    ensemble's classes **by label**: members whose labels differ from each
    other or from ``y`` are refused naming the labels.

    Parameters
    ----------
    estimators : list of classifiers, default=None
        Members, cloned and fitted on the same data (fitted members wrapped
        in :class:`sklearn.frozen.FrozenEstimator` are used as they are).
        A member that has neither ``predict_proba`` nor
        ``decision_function`` is refused with TypeError before any member
        trains.  None gives the paper's teacher: four
        ``DwsCNNClassifier(hidden=256)`` seeded 0-3.
    fusion : {"logits", "proba"}, default="logits"
        Average the members' logits (the fused logits feed distillation
        directly) or their probabilities (better when the members are of
        different kinds, whose logits have different scales).  Members
        without logits contribute the log of their probabilities.
    n_jobs : int, default=None
        Members trained in parallel (joblib processes) on CPU; members on
        a CUDA device are trained one after the other.  Not 0; -1: all
        CPUs.
    verbose : int, default=0

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    classes_ : ndarray
        The labels of ``y``, sorted; every member's columns are matched to them.
    n_features_in_, input_shape_
        Those of the first member that reads features (absent if none does).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier, EnsembleTeacher
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8, 12)).astype("float32")
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, :4] += 2.0
    >>> members = [DwsCNNClassifier(hidden=4, max_epochs=3, random_state=s) for s in range(2)]
    >>> teacher = EnsembleTeacher(members).fit(X, y)
    >>> teacher.predict_logits(X).shape
    (40, 2)
    """

    _input_kind = "ensemble"

    _parameter_constraints: dict = {
        "estimators": [list, tuple, None],
        "fusion": [StrOptions({"logits", "proba"})],
        "n_jobs": [Interval(Integral, 1, None, closed="left"),
                   Interval(Integral, None, -1, closed="right"), None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimators=None, *, fusion="logits", n_jobs=None, verbose=0):
        self.estimators = estimators
        self.fusion = fusion
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _members(self):
        if self.estimators is None:
            return [DwsCNNClassifier(hidden=256, random_state=s) for s in range(4)]
        members = list(self.estimators)
        if not members:
            raise ValueError("estimators must hold at least one classifier")
        for i, member in enumerate(members):
            check_scores_available(member, f"estimators[{i}]")
        return members

    @_fit_context(prefer_skip_nested_validation=False)  # members validate their own
    def fit(self, X, y):
        """Fit every member on ``X``, ``y``; KeyboardInterrupt leaves it unfitted.

        Parameters
        ----------
        X : FeatureSet, array of shape (n_clips, bands, frames), or audio rows
            Training clips (a FeatureSet carries the crops and masks to
            draw, and the way back to its audio for members that read audio).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return _fit_or_forget(self, X, y)

    def _fit(self, X, y):
        members = [clone(m) for m in self._members()]
        for member in members:  # every member's parameters, before any member trains
            inner = unwrap(member)
            if hasattr(inner, "_validate_params") and not _is_fitted(inner):
                inner._validate_params()
            getattr(inner, "_check_params_beyond_table", lambda: None)()
        if all(reads_audio(m) for m in members) and not isinstance(X, FeatureSet):
            y = _check_labels(self, y, _n_rows(X))
            features = X
        else:
            features, y = _check_targets(self, X, y)
        inputs = [teacher_input(m, features, f"estimators[{i}]") for i, m in enumerate(members)]
        for i, (m, x) in enumerate(zip(members, inputs)):
            if isinstance(x, AudioSet):
                check_teacher_rate(m, x.sr, f"estimators[{i}]")
        on_gpu = any(str(getattr(unwrap(m), "device", "cpu")).startswith("cuda") for m in members)
        n_jobs = 1 if on_gpu else self.n_jobs
        workers = min(effective_n_jobs(n_jobs), len(members))
        threads = max(1, torch.get_num_threads() // workers) if workers > 1 else None
        self.estimators_ = Parallel(n_jobs=workers, verbose=self.verbose)(
            delayed(_fit_member)(m, x, y, threads) for m, x in zip(members, inputs)
        )
        self.classes_ = np.unique(y)
        self._orders = [column_order(unwrap(m).classes_, self.classes_, f"estimators[{i}]")
                        for i, m in enumerate(self.estimators_)]
        readers = [unwrap(m) for m in self.estimators_ if not reads_audio(m)]
        for name in ("n_features_in_", "input_shape_"):
            self.__dict__.pop(name, None)
            if readers and hasattr(readers[0], name):
                setattr(self, name, getattr(readers[0], name))
        return self

    def _fused_networks(self):
        """True when every member is a skasc network with the ensemble's column
        order: the fused fast path applies."""
        return is_network_teacher(self) and all(
            np.array_equal(o, np.arange(len(self.classes_))) for o in self._orders)

    def predict_logits(self, X, batch_size=512):
        """Fused logits of each clip, one column per class (see
        :meth:`decision_function` for scikit-learn's shape).

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames)
            (audio rows too when every member reads audio)
        batch_size : int, default=512
            Clips computed at a time.

        Returns
        -------
        ndarray of shape (n_clips, n_classes)
            The members' averaged logits (``fusion="logits"``) or the log
            of their averaged probabilities (``fusion="proba"``), columns in
            the order of ``classes_``.
        """
        check_is_fitted(self, "estimators_")
        batch_size = check_batch_size(batch_size)
        if not self._fused_networks():
            outs = [torch.from_numpy(teacher_scores(m, teacher_input(m, X, f"estimators[{i}]"))[:, o])
                    for i, (m, o) in enumerate(zip(self.estimators_, self._orders))]
            return fuse_logits(outs, self.fusion).numpy()
        features = _check_features_for(self, X)
        device = getattr(self.estimators_[0], "device", "cpu")
        fast = cached_fast_predictor(self, held_networks(self).modules, self.input_shape_,
                                     self.fusion, device=device)
        if fast is not None:  # CPU, no forward hooks
            return _fast_batched_logits(fast, features, batch_size)
        fused = FusedTeacher(held_networks(self).modules, self.fusion)
        return _batched_logits(fused, features, device, batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _is_fitted(estimator):
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
    if inner is not None and not isinstance(inner, FrozenEstimator) and not _is_fitted(inner):
        inner = clone(inner)
    params = {k: clone(v, safe=False) for k, v in params.items()}
    return type(estimator)(**{param: inner}, **params)


class DistilledStudent(DwsCNNClassifier):
    """The paper's student, trained by knowledge distillation from a teacher.

    Loss per batch (Hinton et al.):
    ``(1 - soft_weight) * CE(student, labels) + soft_weight * T^2 *
    KL(p_teacher || softmax(student / T))`` with the labels mixed by mixup.
    ``p_teacher`` is ``softmax(teacher / T)`` of the teacher's logits, which
    are either computed once before training (``teacher_outputs="cached"``)
    or on the very batch the student sees (``"online"``).

    **Cached** (the default): the fused teacher runs once, on its own device
    and inference path, over every window position the crops can draw (or a
    grid of them, ``teacher_step``); each batch gathers the logits of the
    crops it drew (interpolated linearly between grid positions), and mixup
    mixes the teacher's probabilities with the batch's lambda, like the
    labels.  The teacher then sees neither the SpecAugment masks,
    Frequency-MixStyle or device impulse responses nor the mixed input (its
    targets describe the clean crops).  With
    ``checkpoint_dir`` the outputs are stored beside the checkpoint, under
    the fingerprint of the data, parameters and teacher, and a resumed fit
    reads them.  By MAC count, an online epoch with four hidden=256 teachers
    costs about 130 plain student epochs; cached, the whole teacher cost is
    one pass over 451 windows per 10-s recording (46 with
    ``teacher_step=10``), as much as 45 (4.6) online epochs.  **Online**:
    the teacher runs on every batch, after crop, SpecAugment and mixup;
    cheaper than cached only for runs shorter than that.

    A teacher that is already fitted (bare or wrapped in
    :class:`sklearn.frozen.FrozenEstimator`) is used frozen and never
    refitted; :func:`sklearn.base.clone` keeps it, so a GridSearchCV over
    the student's ``hidden`` trains the teacher once, not once per
    candidate.  An unfitted teacher is cloned and fitted on the same data
    first (then available as ``teacher_``).

    **Any classifier can teach** (see ``skasc._teachers``): a skasc network
    reads the student's log-mel windows; a classifier that reads audio --
    :class:`~skasc.PretrainedClassifier`, or a Pipeline starting with
    :class:`~skasc.Reassembler` or :class:`~skasc.LogMel` -- is given the
    audio of the very windows the student sees (cut from the recordings
    that :class:`~skasc.LogMel` linked the features to, as waveforms at the
    student's sample rate; an unfitted one is fitted on the student's
    audio rows); any other scikit-learn classifier reads the windows'
    features as flat rows.  Its scores are ``predict_logits``, else the log
    of ``predict_proba``, else ``decision_function``.  The teacher's
    columns are matched to the student's classes by label; a teacher with
    other labels is refused naming them.  A teacher's sample-rate
    parameters (``sr``) must equal the student's audio rate.

    Parameters
    ----------
    teacher : classifier, default=None
        Any scikit-learn classifier with ``predict_proba`` or
        ``decision_function`` (fitted or not, bare or in a
        FrozenEstimator); one without is refused with TypeError before
        anything trains.  None: ``EnsembleTeacher()`` (the paper's four
        hidden=256 networks), unless ``teacher_outputs`` holds precomputed
        outputs.
    temperature : float, default=2.0
    soft_weight : float, default=0.5
        Weight of the soft (teacher) loss.
    teacher_outputs : {"cached", "online"}, array or path, default="cached"
        Compute the teacher's outputs once before training, or run the
        teacher on every batch (see above; a teacher that is not a skasc
        network runs on each batch's drawn windows before masks and mixup,
        its probabilities mixed like the labels).  Or precomputed logits,
        the way published ensembles ship theirs (``teacher`` must then be
        None): an array or ``.npy`` file of shape (n_clips, n_classes) --
        one row per training clip, for its own window -- or (n_clips,
        n_positions, n_classes) -- per clip, the windows starting at frames
        ``0, teacher_step, 2 * teacher_step, ...`` of its recording up to
        the last start a crop can draw; columns in the order of the sorted
        labels of ``y``, or a ``.npz`` file with ``logits`` and ``classes``
        (the label of each column, matched by label).
    teacher_step : int, default=1
        With ``teacher_outputs="cached"``: grid, in frames, of the crop
        positions the teacher's outputs are computed at.  1: every position a
        crop can draw, so every batch gets the teacher's exact outputs (451
        windows per 10-s recording, as much teacher work as about 45 online
        epochs: worth it for long runs such as the paper's 600 epochs); 10:
        every 200 ms at the paper's hop, a tenth of the pass, with the
        outputs between grid positions interpolated (for short runs).
    max_epochs : int, default=600
        The paper trains the student 600 epochs.
    hidden, linear_hidden, batch_size, lr, lr_schedule, weight_decay, mixup_alpha,
    standardize, device, compile, callbacks, checkpoint_dir, random_state, verbose
        As in :class:`DwsCNNClassifier`.

    Attributes
    ----------
    teacher_ : classifier
        The fitted teacher used.
    classes_, n_features_in_, input_shape_, module_, net_

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier, DistilledStudent
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8, 12)).astype("float32")
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, :4] += 2.0
    >>> teacher = DwsCNNClassifier(hidden=8, max_epochs=3, random_state=0).fit(X, y)
    >>> student = DistilledStudent(teacher, hidden=4, max_epochs=3, random_state=0).fit(X, y)
    >>> student.teacher_ is teacher
    True
    """

    _parameter_constraints: dict = {
        **DwsCNNClassifier._parameter_constraints,
        "teacher": [HasMethods(["fit", "predict"]), None],
        "temperature": _POSITIVE_REAL,
        "soft_weight": [Interval(Real, 0, 1, closed="both")],
        "teacher_outputs": [StrOptions({"cached", "online"}), np.ndarray, str, os.PathLike],
        "teacher_step": _POSITIVE_INT,
    }

    def __init__(
        self, teacher=None, *, hidden=18, temperature=2.0, soft_weight=0.5,
        teacher_outputs="cached", teacher_step=1,
        linear_hidden=100, max_epochs=600, batch_size=64, lr=0.01, lr_schedule="cosine",
        weight_decay=0.0, mixup_alpha=0.5, standardize=True, device="cpu", compile=False,
        callbacks=None, warm_start=False, checkpoint_dir=None, random_state=None, verbose=0,
    ):
        super().__init__(
            hidden=hidden, linear_hidden=linear_hidden, max_epochs=max_epochs,
            batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay,
            mixup_alpha=mixup_alpha, standardize=standardize, device=device, compile=compile,
            callbacks=callbacks, warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            random_state=random_state, verbose=verbose,
        )
        self.teacher = teacher
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.teacher_outputs = teacher_outputs
        self.teacher_step = teacher_step

    def __sklearn_clone__(self):
        # A fitted teacher is frozen: kept instead of handing GridSearchCV an
        # unfitted copy to retrain per candidate.
        return clone_keeping_fitted(self, "teacher")

    # the teacher is an estimator: it validates its own parameters
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the teacher if needed, then distil it into the student.

        Raises KeyboardInterrupt on Ctrl-C and FloatingPointError if the
        loss becomes non-finite, leaving the student unfitted.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames)
            Training clips (a FeatureSet carries the crops and masks to draw).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params_beyond_table()
        return _fit_or_forget(self, X, y)

    def _check_params_beyond_table(self):
        super()._check_params_beyond_table()
        value = self.teacher_outputs
        if isinstance(value, (str, os.PathLike)) and value not in ("cached", "online") \
                and Path(value).suffix not in (".npy", ".npz"):
            raise InvalidParameterError(
                f"The 'teacher_outputs' parameter of {type(self).__name__} must be 'cached', "
                f"'online', an array or the path of a .npy or .npz file of teacher logits. "
                f"Got {value!r} instead.")

    def _precomputed(self):
        """True when ``teacher_outputs`` holds the teacher's logits themselves."""
        return not (isinstance(self.teacher_outputs, str)
                    and self.teacher_outputs in ("cached", "online"))

    def _fit(self, X, y):
        features = as_feature_set(X)
        fine_tuning = self.warm_start and hasattr(self, "module_")
        if y is not None:
            y_arr = column_or_1d(y)
            classes = np.asarray(self.classes_) if fine_tuning else np.unique(y_arr)
        if self._precomputed():
            if self.teacher is not None:
                raise ValueError("teacher_outputs holds precomputed teacher logits and a teacher "
                                 "is given too: pass one of them (teacher=None)")
            logits, labels = read_teacher_logits(self.teacher_outputs)
            if y is not None:
                if labels is not None:
                    logits = logits[..., column_order(labels, classes, "teacher_outputs")]
                elif logits.shape[-1] != len(classes):
                    raise ValueError(
                        f"teacher_outputs has {logits.shape[-1]} columns, y has {len(classes)} "
                        f"classes; columns are taken in the order of the sorted labels "
                        f"{classes.tolist()} (or pass a .npz with 'classes' naming them)")
            self._teacher_logits = logits
            self.teacher_ = None
            try:
                return super()._fit(X, y)
            finally:  # only training reads them: not kept in the fitted model's pickle
                del self._teacher_logits
        teacher = EnsembleTeacher() if self.teacher is None else self.teacher
        check_scores_available(teacher, "teacher")
        teacher = unwrap(teacher)
        if reads_audio(teacher):  # before any training: the audio is there, at the right rate
            audio = teacher_input(teacher, features)
            check_teacher_rate(teacher, audio.sr)
        if _is_fitted(teacher):
            self.teacher_ = teacher
        else:
            _check_targets(self, features, y)
            self.teacher_ = clone(teacher).fit(teacher_input(teacher, features), y)
        if y is not None:
            self._teacher_order = column_order(self.teacher_.classes_, classes)
        if is_network_teacher(self.teacher_) and features.feature_shape != self.teacher_.input_shape_:
            raise ValueError(
                f"the teacher was fitted on inputs of shape {self.teacher_.input_shape_}, "
                f"X has {features.feature_shape}; teacher and student need the same features"
            )
        return super()._fit(X, y)

    def _fingerprint_arrays(self):
        # a student's checkpoint is bound to what it learns from
        if self.teacher_ is None:
            return [self._teacher_logits.reshape(-1).view(np.uint8)]
        try:  # the weights of the teacher's torch networks
            modules = held_networks(self.teacher_).modules
        except (TypeError, ValueError):  # no torch network (e.g. scikit-learn members)
            return [np.frombuffer(pickle.dumps(self.teacher_), np.uint8)]
        about = f"{type(self.teacher_).__name__}:{getattr(self.teacher_, 'fusion', 'logits')}"
        arrays = [np.frombuffer(about.encode(), np.uint8)]
        for module in modules:
            arrays += [t.detach().cpu().reshape(-1).view(torch.uint8).numpy()
                       for t in module.state_dict().values()]
        return arrays

    def _distillation(self):
        teacher = None
        if not self._precomputed() and self.teacher_outputs == "online" \
                and is_network_teacher(self.teacher_):
            # copies: moving them to the student's device leaves the teacher as it is
            modules = [copy.deepcopy(m).to(self.device) for m in held_networks(self.teacher_).modules]
            teacher = FusedTeacher(modules, getattr(self.teacher_, "fusion", "logits"),
                                   columns=self._teacher_order)
        return dict(teacher=teacher, temperature=float(self.temperature),
                    soft_weight=float(self.soft_weight))

    def _before_training(self, features, checkpoint):
        drawer = self.net_.iterator_train__collate_fn
        drawer.temperature = float(self.temperature)
        if self._precomputed():
            drawer.teacher_outputs = precomputed_teacher_outputs(
                self._teacher_logits, features, self.teacher_step).to(self.device)
            return
        if self.teacher_outputs == "online":  # a string here: precomputed returned above
            if not is_network_teacher(self.teacher_):  # its outputs for each batch's windows
                drawer.teacher_outputs = OnDemandTeacherOutputs(
                    self.teacher_, features, self.classes_, self.device)
            return
        positions = teacher_positions(features, self.teacher_step)
        # beside the checkpoint, whose folder is named by the fingerprint of
        # the data, the parameters and the teacher's weights: never stale
        path = None if checkpoint is None else checkpoint[0].with_name("teacher_outputs.pt")
        cached = None
        if path is not None and path.exists():
            cached = TeacherOutputs.load(path, positions, len(self.classes_), self.device)
            if cached is None and self.verbose:
                print(f"[skasc] {path} is not these teacher outputs (changed or unreadable): "
                      "computing them again", flush=True)
        if cached is None:
            if self.verbose:
                print(f"[skasc] teacher outputs at {len(positions):,} window positions "
                      f"(once, on the teacher's device)", flush=True)
            logits = teacher_logits_at(self.teacher_, features, positions, self.classes_,
                                       verbose=self.verbose)
            cached = TeacherOutputs(positions, logits.to(self.device))
            if path is not None:
                cached.save(path)
        drawer.teacher_outputs = cached
