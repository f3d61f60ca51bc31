"""Device impulse response augmentation, with the variants' features computed once."""

from __future__ import annotations

import dataclasses
import os
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._audio import RESAMPLERS, read_impulse_responses
from .._featureset import AudioSet, FeatureSet, ImpulseResponseVariants
from .._hashing import Hasher
from .._rows import is_path_array, row_device
from ._augmentation import Augmentation
from ._input import audio_set, check_n_features, check_waveforms

__all__ = ["DeviceImpulseResponse", "ImpulseResponseAugmentation"]


@dataclasses.dataclass(frozen=True)
class ImpulseResponseAugmentation(Augmentation):
    """Rows drawn from their recordings' convolved variants at training time.

    Attached by :class:`~skasc.LogMel` when its input came from
    :class:`~skasc.DeviceImpulseResponse`: with probability ``p`` a training
    row's window is taken from one of its recording's ``n_variants``
    convolved copies (uniformly), whose features
    :attr:`FeatureSet.variants` locates in the store.  ``digest`` stands for
    the impulse responses and the assignment of responses to recordings.

    Examples
    --------
    >>> from skasc import ImpulseResponseAugmentation
    >>> ImpulseResponseAugmentation(p=0.4, n_variants=2).n_variants
    2
    """

    p: float = 0.4
    n_variants: int = 1
    digest: str = ""

    stage: ClassVar[int] = 1

    def draw(self, batch, rng):
        """Move each row's window, with probability ``p``, to the same
        window in one of its recording's convolved variants (uniformly)."""
        f, rows = batch.features, batch.rows
        if f.variants is None:
            return
        take = rng.random(len(rows)) < self.p
        k = np.floor(rng.random(len(rows)) * f.variants.shape[1]).astype(np.int64)
        if f.variants.shape[1]:
            batch.starts = np.where(take, batch.starts + f.variants[rows, k], batch.starts)

def _recording_device(pieces):
    """The TAU22 device of a recording, read from its first piece's file name."""
    piece = pieces[0]
    if not isinstance(piece, str):
        raise ValueError(
            "DeviceImpulseResponse(devices=...) reads each recording's device from"
            " its TAU22 file name, but X holds waveforms: pass file paths, or"
            " devices=None to convolve every recording"
        )
    try:
        return row_device(piece)
    except ValueError as exc:
        raise ValueError(
            f"DeviceImpulseResponse(devices=...) reads each recording's device from"
            f" its TAU22 file name: {exc}; pass devices=None to convolve every recording"
        ) from None


def _recording_devices(audio):
    """{recording index: TAU22 device} of the recordings rows of ``audio`` use."""
    return {int(r): _recording_device(audio.recordings[r]) for r in np.unique(audio.row_recording)}


def _check_devices_present(devices, found):
    """Refuse a ``devices=`` filter that selects no recording of the data;
    warn about names that select none (a misspelt device convolves nothing)."""
    present = sorted(set(found.values()))
    absent = [d for d in devices if d not in present]
    if not absent:
        return
    near = {d: p for d in absent for p in present if d.lower() == p.lower()}
    hint = (f" (device names are case-sensitive: {', '.join(f'{d!r} is not {p!r}' for d, p in near.items())})"
            if near else "")
    if len(absent) == len(set(devices)):
        raise ValueError(
            f"DeviceImpulseResponse(devices={list(devices)!r}) names no device of X, whose"
            f" recordings are of devices {present}{hint}: no recording would be convolved"
        )
    warnings.warn(
        f"DeviceImpulseResponse(devices=...): X has no recording of device(s) {absent}{hint};"
        f" only those of {sorted(set(devices) - set(absent))} are convolved",
        UserWarning, stacklevel=3,
    )


def _refuse_features(X):
    if isinstance(X, FeatureSet):
        raise TypeError(
            "X holds features, not audio: DeviceImpulseResponse convolves the"
            " waveforms, so it goes before LogMel in the Pipeline"
        )


class DeviceImpulseResponse(TransformerMixin, BaseEstimator):
    """Device impulse response (DIR) augmentation, with features computed once.

    The waveform of a training recording is convolved with the impulse
    response of a recording device, so the network hears the scene as other
    microphones would record it (Morocutti et al., "Device-robust acoustic
    scene classification via impulse response augmentation", EUSIPCO 2023).
    With probability ``p`` a training row is drawn, for the epoch, from a
    convolved copy of its recording, else from the recording itself.

    A waveform-level augmentation would normally rule out computing the
    features once.  Here each eligible recording gets ``n_variants`` copies,
    each convolved with a different response drawn from ``random_state``,
    and :class:`~skasc.LogMel` (the next step) computes their features once,
    beside the originals, through its cache (keyed on the recording's and
    the response's content).  The classifier then picks, for every row of
    every batch, the original or one of the variants (probability ``p``,
    the variant uniformly), from the generator it already draws crops and
    masks from: draws depend only on the seed, the epoch and the batch, so
    training is reproducible and resumes exactly.  Each recording thus meets
    at most ``n_variants`` of the responses, but over the data set all of
    them are used.  The cost is memory: the feature store holds
    ``1 + n_variants`` copies of the eligible recordings (see the
    generalization guide for measured times).

    At predict time (``transform``) the audio passes unchanged.

    Convolution: the full convolution with the response (normalised to unit
    energy, see below), cut to the recording's length, as in Morocutti et
    al.'s code: a response whose energy comes first (a measured one, or the
    minimum-phase ones :func:`~skasc.datasets.make_tau22` writes) adds no
    delay, and the tail past the recording's end is dropped.

    Parameters
    ----------
    ir_dir : str or path-like
        Folder of impulse responses: every ``*.wav`` file in it (searched
        recursively, sorted by path), mono, at ``sr`` Hz.  Each is divided
        by the square root of its energy (``sum(h**2) = 1``), so a response
        changes the spectrum's shape but not, for broadband sound, the level:
        level is not what distinguishes devices here, and measured responses
        come at arbitrary scales.  (Peak normalisation would make the level
        depend on how spread out the response is.)
    p : float, default=0.4
        Probability that a training row is taken from a convolved variant.
        0.4 is the default of the DIR augmentation in the DCASE 2024/2025
        Task 1 code of CP-JKU, who proposed it.
    n_variants : int, default=4
        Convolved copies per eligible recording (capped at the number of
        responses; each copy uses a different response).  Memory and feature
        time grow with ``1 + n_variants``.
    devices : array-like of str or None, default=None
        Only recordings of these devices are convolved, read from TAU22 file
        names (X must then hold paths).  ``("a",)`` is Morocutti et al.'s
        choice: only the reference device's recordings get other devices'
        responses.  None: every recording.
    sr : int, default=44100
        Sample rate of the audio and of the responses.
    resample : {"soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq"} or None, default=None
        None refuses a response stored at another rate (naming the file); a
        soxr quality resamples it to ``sr``.
    random_state : int, RandomState instance or None, default=None
        Draws which responses each recording's variants use.  Fix it for a
        reproducible (and resumable) training run.

    Attributes
    ----------
    files_ : list of str
        The response files, in order.
    impulse_responses_ : list of ndarray
        The normalised responses.
    digests_ : list of str
        Content key of each response.
    n_variants_ : int
        Variants per eligible recording: ``min(n_variants, len(files_))``.
    n_features_in_ : int
        Samples per clip, when fitted on waveforms.

    See Also
    --------
    skasc.datasets.make_tau22 : writes the seen devices' responses of the replica.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> from skasc import DeviceImpulseResponse
    >>> folder = tempfile.mkdtemp()
    >>> sf.write(os.path.join(folder, "dev1.wav"), np.array([1.0, 0.5]), 44100, subtype="FLOAT")
    >>> X = np.random.default_rng(0).normal(scale=0.1, size=(2, 100)).astype("float32")
    >>> step = DeviceImpulseResponse(folder, random_state=0)
    >>> audio = step.fit_transform(X)
    >>> step.n_variants_, audio.impulse_responses.assignment.tolist()
    (1, [[0], [0]])
    >>> step.transform(X).impulse_responses is None
    True
    """

    _parameter_constraints: dict = {
        "ir_dir": [str, os.PathLike],
        "p": [Interval(Real, 0, 1, closed="both")],
        "n_variants": [Interval(Integral, 1, None, closed="left")],
        "devices": ["array-like", None],
        "sr": [Interval(Integral, 1, None, closed="left")],
        "resample": [StrOptions(set(RESAMPLERS)), None],
        "random_state": ["random_state"],
    }

    def __init__(self, ir_dir, p=0.4, n_variants=4, devices=None, sr=44100, resample=None,
                 random_state=None):
        self.ir_dir = ir_dir
        self.p = p
        self.n_variants = n_variants
        self.devices = devices
        self.sr = sr
        self.resample = resample
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Read the impulse responses (and the width of waveform rows).

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler`, path rows or waveforms.
        y : None
            Ignored.

        Returns
        -------
        self : DeviceImpulseResponse
        """
        if self.devices is not None and not all(isinstance(d, str) for d in self.devices):
            raise ValueError(f"devices must be device names (strings) or None; got {self.devices!r}")
        if self.devices is not None and len(self.devices) == 0:
            raise ValueError(
                "devices=() names no device, so no recording would be convolved: pass None to"
                " convolve every recording's, or leave DeviceImpulseResponse out"
            )
        self.__dict__.pop("n_features_in_", None)
        _refuse_features(X)
        if isinstance(X, AudioSet):
            if X.sr != self.sr:
                raise ValueError(
                    f"X holds audio at {X.sr} Hz but DeviceImpulseResponse(sr={self.sr})"
                )
        elif not is_path_array(X):
            check_n_features(self, check_waveforms(X), reset=True)
        if self.devices is not None:  # before any response is read
            _check_devices_present(self.devices, _recording_devices(audio_set(self, X)))
        self.files_, self.impulse_responses_, self.digests_ = read_impulse_responses(
            self.ir_dir, sr=self.sr, resample=self.resample)
        self.n_variants_ = min(int(self.n_variants), len(self.files_))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """The audio with the variants to render attached (training view).

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)
            The output of :class:`Reassembler` (recordings as it joined
            them), path rows or waveforms (each row its own recording).
        y : None
            Ignored.

        Returns
        -------
        audio : AudioSet
            The same rows and recordings, with ``impulse_responses`` saying
            which responses each recording's variants are convolved with.
            Its array view is the unchanged audio.
        """
        self.fit(X, y)
        audio = audio_set(self, X)
        n_rec, n_irs, k = len(audio.recordings), len(self.files_), self.n_variants_
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))
        if k >= n_irs:
            assignment = np.tile(np.arange(n_irs, dtype=np.int64), (n_rec, 1))
        else:  # k different responses per recording
            assignment = np.argsort(rng.random((n_rec, n_irs)), axis=1)[:, :k].astype(np.int64)
        eligible = np.ones(n_rec, bool)
        if self.devices is not None:
            wanted = set(self.devices)
            eligible[:] = False
            for r, device in _recording_devices(audio).items():
                eligible[r] = device in wanted
        if self.p == 0:  # never drawn: nothing to render
            eligible[:] = False
        assignment[~eligible] = -1
        h = Hasher().update(f"{float(self.p)!r}:{self.digests_!r}:", assignment)
        variants = ImpulseResponseVariants(
            responses=tuple(self.impulse_responses_), digests=tuple(self.digests_),
            files=tuple(self.files_), assignment=assignment, p=float(self.p), digest=h.hexdigest(),
        )
        return AudioSet(audio.recordings, audio.row_recording, audio.row_piece, audio.sr, variants)

    def transform(self, X):
        """The audio unchanged: the predict-time view.

        Parameters
        ----------
        X : AudioSet, array-like of shape (n_clips,) or (n_clips, n_samples)

        Returns
        -------
        audio : AudioSet
            The rows as given, no variants attached.
        """
        check_is_fitted(self, "files_")
        _refuse_features(X)
        audio = audio_set(self, X)
        if audio.impulse_responses is None:
            return audio
        return AudioSet(audio.recordings, audio.row_recording, audio.row_piece, audio.sr)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


