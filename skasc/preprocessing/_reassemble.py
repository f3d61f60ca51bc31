"""Reassembler: every 1-s clip learns its parent recording."""

from __future__ import annotations

from numbers import Integral

from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._input import audio_set

__all__ = ["Reassembler"]


class Reassembler(TransformerMixin, BaseEstimator):
    """Give every 1-s clip its parent recording as context.

    Rows are not merged: each row stays one clip, and learns which
    recording it belongs to and where it sits in it.  For path rows the
    recording is found in the row itself:

    * clip rows ``<file>#t=<start>,<end>`` (the rows of
      :func:`~skasc.datasets.load_audio_folder`): the recording is the
      file, and the clips of one file are ordered by their start;
    * TAU22 file paths
      (``<scene>-<city>-<location>-<segment>-<snippet>-<device>.wav``): the
      recording is the name without the snippet index, ordered by snippet.

    For waveform arrays pass ``groups`` (and optionally ``positions``) to
    :meth:`fit_transform`, e.g. through a Pipeline as
    ``pipe.fit(X, y, reassemble__groups=recording_ids)``; given for paths,
    they replace what the rows say.

    Only clips present in ``X`` are joined, and only where their positions
    are consecutive, so a cross-validation split never pulls a held-out
    clip into training and a missing snippet never creates a jump.

    :meth:`transform` (predict time) returns every clip on its own: the
    paper tests on the 1-s clips as they are.

    Waveform arrays are float (full scale 1) or integer PCM: int16, int32,
    int8 and uint8 samples are scaled to [-1, 1] exactly as soundfile reads
    them from a file (``int16 / 2**15``, ``int32 / 2**31``,
    ``(uint8 - 128) / 2**7``), so a clip gives the same features as an
    int16 array and as a file path.  Other integer types (int64, uint16,
    ...) are refused.  ``X`` itself is never modified.

    Parameters
    ----------
    sr : int, default=44100
        Sample rate the audio must have.

    Attributes
    ----------
    n_features_in_ : int
        Samples per clip, when fitted on waveforms (not set for paths).
    n_recordings_ : int
        Recordings found at fit time.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import Reassembler
    >>> X = np.random.default_rng(0).normal(size=(4, 100)).astype("float32") * 0.1
    >>> audio = Reassembler().fit_transform(X, groups=["r1", "r1", "r2", "r2"])
    >>> len(audio), len(audio.recordings)
    (4, 2)
    """

    _parameter_constraints: dict = {"sr": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, sr=44100):
        self.sr = sr

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None, positions=None):
        """Find the recordings of the clips (see :meth:`fit_transform`).

        Parameters
        ----------
        X, y, groups, positions
            As for :meth:`fit_transform`.

        Returns
        -------
        self : Reassembler
        """
        self.fit_transform(X, y, groups=groups, positions=positions)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, groups=None, positions=None):
        """Give every clip its recording: the training view.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, n_samples)
            Path rows (clip rows ``<file>#t=<start>,<end>`` or TAU22 clip
            paths) or waveforms.
        y : None
            Ignored.
        groups : array-like of shape (n_clips,), default=None
            The recording of each row; None: read from path rows (waveform
            rows are then each their own recording).
        positions : array-like of int, shape (n_clips,), default=None
            The position of each row in its recording; None: read from path
            rows, or the row order within each group.

        Returns
        -------
        audio : AudioSet
            One row per clip, each pointing at its recording and its piece.
        """
        for attr in ("n_features_in_",):
            self.__dict__.pop(attr, None)
        out = audio_set(self, X, groups, positions, reassemble=True, reset=True)
        self.n_recordings_ = len(out.recordings)
        return out

    def transform(self, X):
        """Every clip on its own: the predict-time view.

        Parameters
        ----------
        X : array-like of shape (n_clips,) or (n_clips, n_samples)
            Path rows or waveforms.

        Returns
        -------
        audio : AudioSet
            One row per clip, each its own one-piece recording.
        """
        check_is_fitted(self, "n_recordings_")
        return audio_set(self, X, reassemble=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


