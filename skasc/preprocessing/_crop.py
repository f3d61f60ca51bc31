"""Random crops: :class:`RandomCrop` attaches a :class:`CropAugmentation`."""

from __future__ import annotations

import dataclasses
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ._augmentation import Augmentation, AugmentationStep

__all__ = ["CropAugmentation", "RandomCrop"]


@dataclasses.dataclass(frozen=True)
class CropAugmentation(Augmentation):
    """Random window of the row's recording instead of its own window.

    ``step`` is the grid of allowed start frames (1: any frame), ``p`` the
    probability that a row is cropped at random rather than at its own
    window.

    Examples
    --------
    >>> from skasc import CropAugmentation
    >>> CropAugmentation(step=50)
    CropAugmentation(step=50, p=1.0)
    """

    step: int = 1
    p: float = 1.0

    stage: ClassVar[int] = 0

    def draw(self, batch, rng):
        """Move each row's window, with probability ``p``, to a start drawn
        uniformly on the ``step`` grid of its recording."""
        f, rows = batch.features, batch.rows
        lo = f.rec_start[rows]
        n_pos = (f.rec_stop[rows] - f.width - lo) // self.step + 1
        random_starts = lo + self.step * np.floor(rng.random(len(rows)) * n_pos).astype(np.int64)
        take = rng.random(len(rows)) < self.p
        batch.starts = np.where(take, random_starts, batch.starts)

    def window_starts(self, features, step):
        """Every ``k``-th start this crop can draw in each recording, ``k``
        the smallest multiple of the crop's own step that is at least
        ``step`` frames, and the last one (so every drawable start lies
        between two of them)."""
        stride = self.step * max(1, -(-int(step) // self.step))
        parts = []
        for lo, hi in features.recording_spans():
            last = lo + self.step * ((hi - features.width - lo) // self.step)
            parts += [np.arange(lo, last + 1, stride), [last]]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

class RandomCrop(AugmentationStep):
    """Random 1-s window of the clip's parent recording, re-drawn every batch.

    At fit time the rows get a :class:`~skasc.CropAugmentation`: when the
    classifier builds a training batch it takes, for each row, a window of
    the row's width (51 frames for a 1-s clip) starting at a random frame of
    the row's recording.  A new start is drawn for every batch of every
    epoch from the classifier's seeded generator.  At predict time
    (``transform``) every row is its own window, unchanged.

    Cropping features instead of audio is exact up to the hop grid: away
    from the recording's edges a window of the recording's log-mel equals
    the log-mel of the audio under it.

    Parameters
    ----------
    step : int, default=1
        Allowed crop starts are every ``step``-th frame of the recording
        (1: any frame; 50 with the default hop: only the 1-s snippet grid).
    p : float, default=1.0
        Probability that a row is cropped at random; otherwise its own
        window is used.

    Attributes
    ----------
    feature_shape_ : tuple
        (channels, bands, frames) of a row seen at fit time.
    n_features_in_ : int
        ``bands * frames``.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import RandomCrop
    >>> X = np.zeros((3, 4, 51), dtype="float32")
    >>> Xt = RandomCrop().fit_transform(X)
    >>> Xt.augmentations
    (CropAugmentation(step=1, p=1.0),)
    """

    _parameter_constraints: dict = {
        **AugmentationStep._parameter_constraints,
        "step": [Interval(Integral, 1, None, closed="left")],
        "p": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, step=1, p=1.0):
        self.step = step
        self.p = p

    def _augmentation(self):
        return CropAugmentation(step=int(self.step), p=float(self.p))

    def _check_can_act(self, features):
        # rows without recording context (no Reassembler before LogMel, or
        # plain feature arrays) are their whole recording: no other window
        if len(features) and np.all(features.rec_stop - features.rec_start <= features.width):
            warnings.warn(
                "RandomCrop has nothing to crop: every row is its whole recording, so every"
                " crop is the row itself. Put Reassembler before LogMel so that rows see their"
                " recording (or, for features of single clips, leave RandomCrop out)",
                UserWarning, stacklevel=4,  # the caller of fit_transform, past _fit_context
            )


