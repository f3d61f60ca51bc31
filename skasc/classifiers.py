"""skorch-based classifiers: the paper's network, its teacher ensemble and
the distilled student, with the scikit-learn classifier API."""

from __future__ import annotations

import copy
import json
import numbers
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch.callbacks import Checkpoint, ProgressBar
from skorch.dataset import Dataset

from ._featureset import as_tensor_windows
from ._inference import cached_fast_predictor
from ._training import BatchDrawer, CosineLR, EpochSeed, FusedTeacher, SceneNet
from .nn import DwsCNN
from .preprocessing import as_feature_set

__all__ = ["DwsCNNClassifier", "EnsembleTeacher", "DistilledStudent"]


def _check_targets(est, X, y):
    """Validate y against X; return (features, y as 1-D array)."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    features = as_feature_set(X)
    y = column_or_1d(y, warn=True)
    if len(y) != len(features):
        raise ValueError(
            f"X and y have different lengths: X has {len(features)} rows, y has {len(y)}"
        )
    check_classification_targets(y)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"{type(est).__name__} needs at least 2 classes in y; got 1 class: {np.unique(y)[0]!r}"
        )
    return features, y


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


def _softmax(logits):
    return torch.softmax(torch.as_tensor(logits), dim=1).numpy()


class _SceneClassifierMixin:
    """Prediction and scoring shared by the three classifiers."""

    def predict_proba(self, X):
        """Class probabilities of each clip, shape (n_clips, n_classes)."""
        return _softmax(self.predict_logits(X))

    def predict(self, X):
        """Most probable scene of each clip."""
        logits = self.predict_logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy; labels the model never saw raise instead of counting as errors."""
        check_is_fitted(self)
        y = column_or_1d(y)
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y contains labels the model was not fitted on: {unseen.tolist()}; "
                f"known classes are {self.classes_.tolist()}"
            )
        return super().score(X, y, sample_weight=sample_weight)


class DwsCNNClassifier(_SceneClassifierMixin, ClassifierMixin, BaseEstimator):
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
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, as ``(name, callback)`` pairs or callbacks.
    checkpoint_dir : str or path, default=None
        If set, the network, optimizer and history are saved there after
        every epoch (skorch's ``Checkpoint``), and a ``fit`` that finds a
        checkpoint there resumes from it and trains only the remaining
        epochs.  With an integer ``random_state`` the resumed run ends with
        exactly the weights of an uninterrupted one (crops, masks, mixup and
        batch order are seeded per epoch, the learning rate is a function of
        the epoch).
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
        device="cpu", callbacks=None, checkpoint_dir=None, random_state=None, verbose=0,
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
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    # -- validation -----------------------------------------------------
    def _validate_params(self):
        def integer(name, low):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")

        def real(name, low, strict=False):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or v < low or (strict and v == low):
                raise ValueError(f"{name} must be a number {'>' if strict else '>='} {low}, got {v!r}")

        integer("hidden", 1)
        integer("linear_hidden", 1)
        integer("max_epochs", 1)
        integer("batch_size", 1)
        real("lr", 0, strict=True)
        real("weight_decay", 0)
        if self.mixup_alpha is not None:
            real("mixup_alpha", 0)
        if self.lr_schedule not in ("cosine", None):
            raise ValueError(f"lr_schedule must be 'cosine' or None, got {self.lr_schedule!r}")
        torch.device(self.device)  # raises on a malformed device string

    # -- training -------------------------------------------------------
    def _distillation(self):
        """Keyword arguments of SceneNet's distillation loss (none here)."""
        return {}

    def fit(self, X, y):
        """Train on clips ``X`` (FeatureSet or array) with labels ``y``."""
        self._validate_params()
        features, y = _check_targets(self, X, y)
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        y_enc = self._encoder.transform(y).astype(np.int64)
        self.input_shape_ = features.feature_shape
        self.n_features_in_ = features.shape[1]
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        distillation = self._distillation()
        rows = np.arange(len(features))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net_ = self._build_net(features, len(self.classes_), seed, distillation)
            self.net_.initialize()
            if self.standardize:
                self.net_.module_.set_input_normalization(*features.band_statistics())
            done = self._resume_from_checkpoint(y_enc)
            if done < self.max_epochs:
                self.net_.partial_fit(rows, y_enc, epochs=self.max_epochs - done)
        self.net_.iterator_train__collate_fn.release()
        self.module_ = self.net_.module_.eval()
        return self

    def _checkpoint_signature(self, y_enc):
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("callbacks", "verbose", "checkpoint_dir", "teacher", "device")}
        return json.dumps(dict(estimator=type(self).__name__, params=params, n_rows=len(y_enc),
                               classes=[str(c) for c in self.classes_],
                               input_shape=list(self.input_shape_)), sort_keys=True, default=repr)

    def _resume_from_checkpoint(self, y_enc):
        """Load the checkpoint in checkpoint_dir into the initialized net, if any;
        return the epochs done."""
        if self.checkpoint_dir is None:
            return 0
        folder = Path(self.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        signature = self._checkpoint_signature(y_enc)
        sig_file = folder / "skasc_checkpoint.json"
        if not (folder / "history.json").exists():
            sig_file.write_text(signature)
            return 0
        if not sig_file.exists() or sig_file.read_text() != signature:
            raise ValueError(
                f"checkpoint_dir {str(folder)!r} holds a checkpoint of another model or data "
                "(different parameters, classes, input shape or number of rows); use a new "
                "folder or delete it to start afresh"
            )
        self.net_.load_params(f_params=folder / "params.pt", f_optimizer=folder / "optimizer.pt",
                              f_history=folder / "history.json")
        return len(self.net_.history)

    def _build_net(self, features, n_classes, seed, distillation):
        drawer = BatchDrawer(features, n_classes, self.mixup_alpha, seed, device=self.device)
        generator = torch.Generator()
        callbacks = [("epoch_seed", EpochSeed(drawer, generator))]
        if self.lr_schedule == "cosine":
            callbacks.append(("cosine_lr", CosineLR(self.lr, self.max_epochs)))
        if self.checkpoint_dir is not None:
            callbacks.append(("checkpoint", Checkpoint(
                monitor=None, dirname=str(self.checkpoint_dir), f_params="params.pt",
                f_optimizer="optimizer.pt", f_criterion=None, f_history="history.json",
                f_pickle=None, load_best=False)))
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        callbacks += list(self.callbacks or [])
        silence = {} if self.verbose else {"callbacks__print_log": None}
        return SceneNet(
            DwsCNN,
            module__n_classes=n_classes,
            module__hidden=self.hidden,
            module__input_shape=features.feature_shape,
            module__linear_hidden=self.linear_hidden,
            criterion=torch.nn.CrossEntropyLoss,  # unused: get_loss is soft CE
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
            verbose=int(bool(self.verbose)),
            **distillation,
            **silence,
        )

    # -- inference ------------------------------------------------------
    def _torch_modules(self):
        check_is_fitted(self, "module_")
        return [self.module_]

    def predict_logits(self, X, batch_size=512):
        """Logits of each clip, shape (n_clips, n_classes)."""
        check_is_fitted(self, "module_")
        features = _check_features_for(self, X)
        fast = cached_fast_predictor(self, [self.module_], self.input_shape_, device=self.device)
        if fast is not None:  # CPU, no forward hooks
            return _fast_batched_logits(fast, features, batch_size)
        return _batched_logits(self.module_, features, self.device, batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


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
    """Average of several networks, the paper's fused teacher.

    Parameters
    ----------
    estimators : list of classifiers, default=None
        Members, cloned and fitted on the same data.  None gives the
        paper's teacher: four ``DwsCNNClassifier(hidden=256)`` seeded 0-3.
    fusion : {"logits", "proba"}, default="logits"
        Average the members' logits (the fused logits feed distillation
        directly) or their probabilities.
    n_jobs : int, default=None
        Members trained in parallel (joblib processes) on CPU; members on
        a CUDA device are trained one after the other.
    verbose : int, default=0

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    classes_, n_features_in_, input_shape_

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
        return members

    def fit(self, X, y):
        if self.fusion not in ("logits", "proba"):
            raise ValueError(f"fusion must be 'logits' or 'proba', got {self.fusion!r}")
        features, y = _check_targets(self, X, y)
        members = [clone(m) for m in self._members()]
        on_gpu = any(str(getattr(m, "device", "cpu")).startswith("cuda") for m in members)
        n_jobs = 1 if on_gpu else self.n_jobs
        from joblib import effective_n_jobs

        workers = min(effective_n_jobs(n_jobs), len(members))
        threads = max(1, torch.get_num_threads() // workers) if workers > 1 else None
        self.estimators_ = Parallel(n_jobs=workers, verbose=self.verbose)(
            delayed(_fit_member)(m, features, y, threads) for m in members
        )
        first = self.estimators_[0]
        self.classes_ = first.classes_
        self.n_features_in_ = first.n_features_in_
        self.input_shape_ = first.input_shape_
        return self

    def _torch_modules(self):
        check_is_fitted(self, "estimators_")
        return [m for est in self.estimators_ for m in est._torch_modules()]

    def predict_logits(self, X, batch_size=512):
        """Fused logits (log of the averaged probabilities for fusion="proba")."""
        check_is_fitted(self, "estimators_")
        features = _check_features_for(self, X)
        device = getattr(self.estimators_[0], "device", "cpu")
        fast = cached_fast_predictor(self, self._torch_modules(), self.input_shape_,
                                     self.fusion, device=device)
        if fast is not None:  # CPU, no forward hooks
            return _fast_batched_logits(fast, features, batch_size)
        fused = FusedTeacher(self._torch_modules(), self.fusion)
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


class DistilledStudent(DwsCNNClassifier):
    """The paper's student, trained by knowledge distillation from a teacher.

    Loss per batch (Hinton et al.):
    ``(1 - soft_weight) * CE(student, labels) + soft_weight * T^2 *
    KL(softmax(teacher / T) || softmax(student / T))`` with the labels mixed
    by mixup and the teacher's logits computed on the very batch the student
    sees (after crop, SpecAugment and mixup).

    A teacher that is already fitted (bare or wrapped in
    :class:`sklearn.frozen.FrozenEstimator`) is used frozen and never
    refitted; :func:`sklearn.base.clone` keeps it, so a GridSearchCV over
    the student's ``hidden`` trains the teacher once, not once per
    candidate.  An unfitted teacher is cloned and fitted on the same data
    first (then available as ``teacher_``).

    Parameters
    ----------
    teacher : classifier, default=None
        A :class:`DwsCNNClassifier`, :class:`EnsembleTeacher` or another
        skasc classifier; None: ``EnsembleTeacher()`` (the paper's four
        hidden=256 networks).
    temperature : float, default=2.0
    soft_weight : float, default=0.5
        Weight of the soft (teacher) loss.
    max_epochs : int, default=600
        The paper trains the student 600 epochs.
    hidden, linear_hidden, batch_size, lr, lr_schedule, weight_decay, mixup_alpha,
    standardize, device, callbacks, checkpoint_dir, random_state, verbose
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

    def __init__(
        self, teacher=None, *, hidden=18, temperature=2.0, soft_weight=0.5,
        linear_hidden=100, max_epochs=600, batch_size=64, lr=0.01, lr_schedule="cosine",
        weight_decay=0.0, mixup_alpha=0.5, standardize=True, device="cpu", callbacks=None,
        checkpoint_dir=None, random_state=None, verbose=0,
    ):
        super().__init__(
            hidden=hidden, linear_hidden=linear_hidden, max_epochs=max_epochs,
            batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay,
            mixup_alpha=mixup_alpha, standardize=standardize, device=device, callbacks=callbacks,
            checkpoint_dir=checkpoint_dir, random_state=random_state, verbose=verbose,
        )
        self.teacher = teacher
        self.temperature = temperature
        self.soft_weight = soft_weight

    def __sklearn_clone__(self):
        # A fitted teacher is frozen: keep it (like FrozenEstimator) instead
        # of handing GridSearchCV an unfitted copy to retrain per candidate.
        params = self.get_params(deep=False)
        teacher = params.pop("teacher")
        if teacher is not None and not isinstance(teacher, FrozenEstimator) and not _is_fitted(teacher):
            teacher = clone(teacher)
        params = {k: clone(v, safe=False) for k, v in params.items()}
        return type(self)(teacher=teacher, **params)

    def fit(self, X, y):
        """Fit the teacher if needed, then distil it into the student."""
        if not isinstance(self.temperature, numbers.Real) or not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not isinstance(self.soft_weight, numbers.Real) or not 0 <= self.soft_weight <= 1:
            raise ValueError(f"soft_weight must be in [0, 1], got {self.soft_weight!r}")
        teacher = EnsembleTeacher() if self.teacher is None else self.teacher
        if isinstance(teacher, FrozenEstimator):
            teacher = teacher.estimator
        if _is_fitted(teacher):
            self.teacher_ = teacher
        else:
            self._validate_params()
            _check_targets(self, X, y)
            self.teacher_ = clone(teacher).fit(X, y)
        if not hasattr(self.teacher_, "_torch_modules"):
            raise TypeError(
                f"teacher must be a skasc classifier (DwsCNNClassifier, EnsembleTeacher, "
                f"DistilledStudent); got {type(self.teacher_).__name__}"
            )
        y_arr = column_or_1d(y) if y is not None else y
        if y_arr is not None:
            classes = np.unique(y_arr)
            if len(classes) != len(self.teacher_.classes_) or np.any(classes != self.teacher_.classes_):
                raise ValueError(
                    f"the teacher was fitted on classes {self.teacher_.classes_.tolist()}, but y "
                    f"has classes {classes.tolist()}; teacher and student need the same classes"
                )
        features = as_feature_set(X)
        if features.feature_shape != self.teacher_.input_shape_:
            raise ValueError(
                f"the teacher was fitted on inputs of shape {self.teacher_.input_shape_}, "
                f"X has {features.feature_shape}; teacher and student need the same features"
            )
        return super().fit(X, y)

    def _distillation(self):
        # copies: moving them to the student's device leaves the teacher as it is
        modules = [copy.deepcopy(m).to(self.device) for m in self.teacher_._torch_modules()]
        return dict(
            teacher=FusedTeacher(modules, getattr(self.teacher_, "fusion", "logits")),
            temperature=float(self.temperature),
            soft_weight=float(self.soft_weight),
        )
