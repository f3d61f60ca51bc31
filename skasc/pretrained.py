"""An AudioSet-pretrained network as a scikit-learn classifier: EfficientAT's
MobileNetV3, fine-tuned on the user's classes, typically as a teacher."""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, Options, StrOptions

from ._audio import resample_audio
from ._efficientat import EfficientATFrontEnd, MobileNetAT, parse_model_name
from ._featureset import AudioSet, FeatureSet
from ._training import plain_module
from ._weights import load_checkpoint, resolve_weights
from ._base import (
    NON_NEGATIVE_REAL,
    POSITIVE_INT,
    POSITIVE_REAL,
    NetworkClassifier,
    check_training_labels,
)
from ._dwscnn_classifier import DwsCNNClassifier
from ._rows import is_path_array
from .preprocessing import CropAugmentation, MaskAugmentation
from .preprocessing._input import audio_set
from .preprocessing._logmel import locate_rows
from .preprocessing._recording_audio import load_recording, read_units

__all__ = ["PretrainedClassifier", "efficientat_features"]

_SR = EfficientATFrontEnd.sr
# shorter signals are zero-padded: the centred STFT's reflection padding
# needs more than n_fft // 2 samples
_MIN_SAMPLES = EfficientATFrontEnd.n_fft


def _recording_signal(pieces, audio_sr):
    """A recording's samples at 32 kHz and the length of each piece there.

    Files (whole, or the ``#t=`` spans of clip rows) are read at their own
    rate and resampled with soxr (high quality) as one stretch; waveform
    pieces, at ``audio_sr``, are joined and resampled together.
    """
    units = read_units(pieces)
    if all(u.kind != "array" for u in units):
        signal, lengths, _ = load_recording(units, _SR, "soxr_hq")
        return signal, np.asarray(lengths)
    arrays = [np.asarray(u.source, dtype=np.float32) for u in units]
    signal = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    if audio_sr != _SR:
        signal = resample_audio(signal, audio_sr, _SR)
        # piece boundaries at the new rate
        edges = np.round(np.cumsum([0] + [len(a) for a in arrays]) * _SR / audio_sr).astype(np.int64)
        edges[-1] = len(signal)
        return signal, np.diff(edges)
    return signal, np.asarray([len(a) for a in arrays])


def efficientat_features(audio, *, verbose=0):
    """EfficientAT log-mel features of an :class:`~skasc.AudioSet`, one row per clip.

    Each recording is read (and resampled to 32 kHz) once; its log-mel is
    computed by :class:`~skasc._efficientat.EfficientATFrontEnd` over the
    whole recording, and each row's window is the frames of its own clip
    (``1 + (samples - 1) // 320`` frames: 100 for a 1-s clip).  Signals
    shorter than 1,024 samples at 32 kHz are zero-padded to that length.

    Parameters
    ----------
    audio : AudioSet
    verbose : int, default=0
        Progress bar over recordings when > 0.

    Returns
    -------
    FeatureSet
        128 bands, time-major store, one row per clip.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import AudioSet
    >>> from skasc.pretrained import efficientat_features
    >>> x = np.zeros(44100, "float32")
    >>> audio = AudioSet([(x, x)], row_recording=[0, 0], row_piece=[0, 1], sr=44100)
    >>> efficientat_features(audio).windows().shape      # two 1-s clips of one recording
    (2, 128, 100)
    """
    front = EfficientATFrontEnd()
    used = np.unique(audio.row_recording)
    it = used
    if verbose:
        from tqdm.auto import tqdm

        it = tqdm(used, desc="EfficientAT front end", unit="recording")
    parts, placement, pos = [], {}, 0
    with torch.inference_mode():
        for r in it:
            signal, lengths = _recording_signal(audio.recordings[r], audio.sr)
            if len(signal) < _MIN_SAMPLES:
                signal = np.pad(signal, (0, _MIN_SAMPLES - len(signal)))
            mel = front(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))[None])[0]
            parts.append(mel.T.contiguous().numpy())
            placement[r] = (pos, mel.shape[1], np.asarray(lengths, dtype=np.int64), [])
            pos += mel.shape[1]
    store = np.concatenate(parts) if parts else np.zeros((0, EfficientATFrontEnd.n_mels), np.float32)
    return locate_rows(audio, placement, store, EfficientATFrontEnd.hop_length,
                       frames_of=lambda n: EfficientATFrontEnd.n_frames(max(n, _MIN_SAMPLES)))


class PretrainedClassifier(NetworkClassifier):
    """An AudioSet-pretrained EfficientAT MobileNet, fine-tuned on your classes.

    The network (:class:`~skasc._efficientat.MobileNetAT`) and its front end
    (:class:`~skasc._efficientat.EfficientATFrontEnd`: 32 kHz, 128 Kaldi mel
    bands, 10-ms hop) are EfficientAT's (Schmid et al., ICASSP 2023),
    written for skasc from the paper and the checkpoints' parameter names;
    with the published ``mn04_as`` weights it reproduces the authors'
    AudioSet logits to ~1e-5.  ``fit`` replaces the 527-class AudioSet head
    with one for the classes of ``y`` and fine-tunes either the head alone
    or the whole network (the body at a smaller learning rate), with the
    paper's augmentations where they apply: a random 1-s crop of each
    clip's recording per batch (when the rows come from
    :class:`~skasc.Reassembler`), SpecAugment-style masks on the log-mel
    input and mixup.  It takes the same rows as the other skasc pipelines'
    first step: the output of :class:`~skasc.Reassembler`, file paths or
    clip rows ``<file>#t=<start>,<end>`` (read at the file's own rate and
    resampled to 32 kHz with soxr), or a 2-D array of waveforms at ``sr``
    Hz.  Put it in a Pipeline after :class:`~skasc.Reassembler` (or alone);
    it computes its own features.

    As the teacher of a :class:`~skasc.DistilledStudent`, it is given the
    student's audio: the 1-s window of each recording at every crop
    position the student can draw, as waveforms at the student's rate.

    Parameters
    ----------
    model : str, default="mn04_as"
        EfficientAT model name ``mnXY_as`` (width multiplier XY / 10:
        ``mn01_as`` ... ``mn40_as``, or ``mn40_as_ext``).
    weights : str, path, None or False, default=None
        None: the published AudioSet checkpoint of ``model`` -- the copy
        shipped with skasc (``mn04_as``), else the one in the cache folder
        (``$SKASC_CACHE_DIR`` or ``~/.cache/skasc``), else downloaded there
        from the authors' release (``$SKASC_WEIGHTS_URL`` overrides the
        address) and checked against its SHA-256.  A path: that checkpoint
        (a state dict of this width, any number of outputs).  False: no
        pretrained weights (random initialisation, for ablations and tests).
    fine_tune : {"all", "head"}, default="all"
        Train the whole network (the body at ``lr * body_lr_scale``) or only
        the MLP head (the body frozen, its batch norms in eval mode).
    body_lr_scale : float, default=1.0
        Learning rate of the body relative to ``lr`` with ``fine_tune="all"``
        (below 1: a smaller rate for the pretrained body).  On the three
        grouped folds of the Kitchen20 development clips (10 epochs,
        ``lr=1e-3``), 1.0 reached 65.2 % clip accuracy on average, 0.1
        59.8 %.
    sr : int, default=44100
        Sample rate of waveform rows (files are read at their own rate).
    max_epochs : int, default=10
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam learning rate of the head.
    lr_schedule : {"cosine", None}, default="cosine"
    weight_decay : float, default=0.0
    mixup_alpha : float, default=0.3
        Mixup's Beta parameter; 0 disables mixup.
    random_crop : bool, default=True
        Draw each training row's window at a random position of its
        recording every batch (the paper's crops; a no-op for rows that are
        their own recording).
    freq_mask_width, time_mask_width : int, default=8, 20
        Widest frequency (of 128 bands) and time (10-ms frames) mask, one of
        each per training row; 0 disables it.
    device, compile, callbacks, warm_start, checkpoint_dir, random_state, verbose
        As in :class:`~skasc.DwsCNNClassifier` (the checkpoint fingerprint
        also covers the pretrained weights' content).

    Attributes
    ----------
    classes_ : ndarray
    input_shape_ : tuple
        ``(1, 128, frames)`` of one clip (100 frames for 1 s).
    n_features_in_ : int
        Samples per row, when fitted on waveforms.
    module_ : MobileNetAT
        The fine-tuned network (in eval mode).
    weights_ : str or None
        The checkpoint file the body was initialised from (None: random).
    net_ : skorch.NeuralNet

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import PretrainedClassifier
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(16000) / 16000                     # 1-s clips at 16 kHz
    >>> X = 0.01 * rng.normal(size=(24, 16000)).astype("float32")
    >>> X[:12] += 0.1 * np.sin(2 * np.pi * 300 * t)     # 12 low tones ...
    >>> X[12:] += 0.1 * np.sin(2 * np.pi * 3000 * t)    # ... and 12 high ones
    >>> y = np.repeat(["low", "high"], 12)
    >>> clf = PretrainedClassifier(fine_tune="head", sr=16000, max_epochs=5, random_state=0)
    >>> clf.fit(X, y).predict(X[[0, -1]]).tolist()
    ['low', 'high']
    """

    # a teacher of this kind is given audio (see skasc._teachers)
    _input_kind = "audio"

    _parameter_constraints: dict = {
        "model": [str],
        "weights": [str, os.PathLike, None, Options(bool, {False})],
        "fine_tune": [StrOptions({"all", "head"})],
        "body_lr_scale": [Interval(Real, 0, 1, closed="right")],
        "sr": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "lr": POSITIVE_REAL,
        "lr_schedule": [StrOptions({"cosine"}), None],
        "weight_decay": NON_NEGATIVE_REAL,
        "mixup_alpha": [*NON_NEGATIVE_REAL, None],
        "random_crop": ["boolean"],
        "freq_mask_width": [Interval(Integral, 0, None, closed="left")],
        "time_mask_width": [Interval(Integral, 0, None, closed="left")],
        **{k: DwsCNNClassifier._parameter_constraints[k] for k in (
            "device", "compile", "callbacks", "warm_start", "checkpoint_dir", "random_state",
            "verbose")},
    }

    def __init__(
        self, model="mn04_as", *, weights=None, fine_tune="all", body_lr_scale=1.0, sr=44100,
        max_epochs=10, batch_size=64, lr=1e-3, lr_schedule="cosine", weight_decay=0.0,
        mixup_alpha=0.3, random_crop=True, freq_mask_width=8, time_mask_width=20,
        device="cpu", compile=False, callbacks=None, warm_start=False, checkpoint_dir=None,
        random_state=None, verbose=0,
    ):
        self.model = model
        self.weights = weights
        self.fine_tune = fine_tune
        self.body_lr_scale = body_lr_scale
        self.sr = sr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.mixup_alpha = mixup_alpha
        self.random_crop = random_crop
        self.freq_mask_width = freq_mask_width
        self.time_mask_width = time_mask_width
        self.device = device
        self.compile = compile
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Fine-tune on audio rows ``X`` with labels ``y``.

        Raises KeyboardInterrupt on Ctrl-C and FloatingPointError if the
        loss becomes non-finite, leaving the estimator unfitted.

        Parameters
        ----------
        X : AudioSet, array-like of paths / clip rows, or waveforms (n_clips, n_samples)
            The output of :class:`~skasc.Reassembler` (each row's recording
            known: random crops), file paths or ``<file>#t=<start>,<end>``
            rows (read at their own rate, resampled to 32 kHz), or waveforms
            at ``sr`` Hz.  A :class:`~skasc.FeatureSet` made by
            :class:`~skasc.LogMel` stands for the audio it links to.
        y : array-like of shape (n_clips,)

        Returns
        -------
        self : PretrainedClassifier
        """
        return super().fit(X, y)

    # -- validation --------------------------------------------------------
    def _check_params_beyond_table(self):
        super()._check_params_beyond_table()
        parse_model_name(self.model)  # ValueError naming the model
        if self.weights is not None and self.weights is not False:
            resolve_weights(self.model, self.weights)  # ValueError naming a missing file

    def _initial_state(self):
        """(state dict of the body and head, file) from ``weights``, checked
        to load strictly into the network of this width."""
        if self.weights is False:
            return None, None
        path = resolve_weights(self.model, self.weights)
        state = load_checkpoint(path)
        head = state.get("classifier.5.weight")
        n_out = int(head.shape[0]) if head is not None and head.ndim == 2 else 527
        reference = MobileNetAT(parse_model_name(self.model), n_out)
        try:
            reference.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
            raise ValueError(
                f"weights file {str(path)!r} is not a checkpoint of model={self.model!r} "
                f"(width {parse_model_name(self.model)}): {' '.join(lines)[:300]}") from None
        return state, str(path)

    # -- features ----------------------------------------------------------
    def _audio(self, X, training=False):
        if isinstance(X, FeatureSet):
            link = X.audio_link
            if link is None:
                raise TypeError(
                    "PretrainedClassifier reads audio, and X holds features without their audio "
                    "(plain arrays or a FeatureSet not made by LogMel): pass the audio rows")
            return link.audio
        # waveform rows: their width is checked against (predict) or
        # recorded as (fit) n_features_in_, scikit-learn's way
        return audio_set(self, X, reset=training)

    def _as_features(self, X, y=None, training=False):
        if y is None:
            raise ValueError("PretrainedClassifier requires y to be passed, but the target y is None.")
        audio = self._audio(X, training=True)
        check_training_labels(self, y, len(audio))  # before the front end reads any audio
        features = efficientat_features(audio, verbose=self.verbose)
        if training:
            if self.random_crop:
                features = features.with_augmentation(CropAugmentation())
            if self.freq_mask_width or self.time_mask_width:
                features = features.with_augmentation(MaskAugmentation(
                    freq_width=self.freq_mask_width, time_width=self.time_mask_width))
        return features

    def _predict_features(self, X):
        audio = self._audio(X)
        features = efficientat_features(audio)
        if features.feature_shape != self.input_shape_:
            raise ValueError(
                f"X's clips give {features.width} frames at 32 kHz, but {type(self).__name__} "
                f"was fitted on clips of {self.input_shape_[2]} frames: give it clips of the "
                "duration it was trained on")
        return features

    def _set_n_features(self, X, features):
        # n_features_in_ is the samples per waveform row (set by audio_set),
        # absent for file rows and AudioSets
        if isinstance(X, (AudioSet, FeatureSet)) or is_path_array(X):
            self.__dict__.pop("n_features_in_", None)

    # -- the network -------------------------------------------------------
    def _net_spec(self, features, n_classes):
        spec = dict(module=MobileNetAT, module__width=parse_model_name(self.model),
                    module__n_classes=n_classes)
        if self.fine_tune == "all" and self.body_lr_scale != 1:
            spec["optimizer__param_groups"] = [("features.*", {"lr": self.lr * self.body_lr_scale})]
        return spec

    def _after_initialize(self, net):
        module = plain_module(net.module_)
        state, self.weights_ = self._initial_state()
        if state is not None:
            body = {k: v for k, v in state.items() if not k.startswith("classifier.5.")}
            missing, unexpected = module.load_state_dict(body, strict=False)
            assert not unexpected and all(k.startswith("classifier.5.") for k in missing)
        if self.fine_tune == "head":
            module.freeze_body()

    def _fingerprint_arrays(self):
        # a checkpoint is bound to the weights the fit starts from
        state, _ = self._initial_state()
        if state is None:
            return ()
        return [t.detach().cpu().reshape(-1).view(torch.uint8).numpy() for t in state.values()]

    def predict_logits(self, X, batch_size=256):
        """Logits of each clip, one column per class.

        Parameters
        ----------
        X : AudioSet, array-like of paths / clip rows, or waveforms (n_clips, n_samples)
            A 2-D array holds waveforms at ``sr`` Hz, ``n_features_in_``
            samples each (see :class:`~skasc._predict.SceneClassifierMixin`
            for what inputs mean to each skasc classifier).
        batch_size : int, default=256

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float32
        """
        return super().predict_logits(X, batch_size=batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = False
        tags.non_deterministic = False
        return tags

