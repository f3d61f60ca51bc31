"""The paper's network as a scikit-learn classifier: :class:`DwsCNNClassifier`."""

from __future__ import annotations

import os

import torch
from sklearn.utils._param_validation import StrOptions

from ._base import NON_NEGATIVE_REAL, POSITIVE_INT, POSITIVE_REAL, NetworkClassifier
from ._inference import cached_fast_predictor
from .nn import DwsCNN

__all__ = ["DwsCNNClassifier"]


class DwsCNNClassifier(NetworkClassifier):
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
    compile : bool or "auto", default="auto"
        Train a ``torch.compile``-d network (skorch's ``compile=True``, one
        graph per batch size).  The compiled training step fuses the
        BatchNorm, ReLU and residual passes and runs faster than eager
        (``benchmarks/bench_training.py --compile``; figures, including the
        one-off compilation time, in the README), after a one-off
        compilation (cached on disk by torch for later processes): worth it
        for long runs, not for a few epochs.  ``"auto"`` decides from the
        run's size: it compiles when training clips x ``max_epochs`` reach
        200,000 (the paper's 600-epoch runs, not a short demo; see
        ``skasc._base.AUTO_COMPILE_SAMPLE_EPOCHS`` for the arithmetic) and
        a compiler is found (a C++ compiler on CPU, Triton on CUDA).  Each
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
        device="cpu", compile="auto", callbacks=None, warm_start=False, checkpoint_dir=None,
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
        "hidden": POSITIVE_INT,
        "linear_hidden": POSITIVE_INT,
        "max_epochs": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "lr": POSITIVE_REAL,
        "lr_schedule": [StrOptions({"cosine"}), None],
        "weight_decay": NON_NEGATIVE_REAL,
        "mixup_alpha": [*NON_NEGATIVE_REAL, None],
        "standardize": ["boolean"],
        "device": [str, torch.device],
        "compile": ["boolean", StrOptions({"auto"})],
        "callbacks": [list, tuple, None],
        "warm_start": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # -- what is specific to this network (hooks of NetworkClassifier) -----
    def _net_spec(self, features, n_classes):
        return dict(module=DwsCNN, module__n_classes=n_classes, module__hidden=self.hidden,
                    module__input_shape=features.feature_shape,
                    module__linear_hidden=self.linear_hidden)

    def _fast_predictor(self):
        return cached_fast_predictor(self, [self.module_], self.input_shape_, device=self.device)
