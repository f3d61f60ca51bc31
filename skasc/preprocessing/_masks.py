"""SpecAugment: :class:`SpecAugment` attaches a :class:`MaskAugmentation`."""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._augmentation import Augmentation, AugmentationStep

__all__ = ["MaskAugmentation", "SpecAugment"]


@dataclasses.dataclass(frozen=True)
class MaskAugmentation(Augmentation):
    """SpecAugment masks to draw at training time.

    ``n_freq`` frequency masks and ``n_time`` time masks, each of a width
    drawn uniformly from 0 to ``freq_width`` / ``time_width`` (inclusive),
    set to ``value``.

    Examples
    --------
    >>> from skasc import MaskAugmentation
    >>> MaskAugmentation(freq_width=8).n_freq
    1
    """

    freq_width: int = 10
    time_width: int = 10
    n_freq: int = 1
    n_time: int = 1
    value: float = 0.0

    stage: ClassVar[int] = 20

    def draw(self, batch, rng):
        """Draw, per mask (the frequency masks first), a width for every row
        (uniform in 0 .. the largest width) and a start (uniform where the
        mask fits), and set the masked cells of ``batch.x`` to ``value``."""
        x = batch.x
        n, device = x.shape[0], x.device
        for axis, count, max_width in ((1, self.n_freq, self.freq_width), (2, self.n_time, self.time_width)):
            size = x.shape[axis]
            for _ in range(count):
                width = rng.integers(0, max_width + 1, size=n) if max_width > 0 else np.zeros(n, np.int64)
                width = np.minimum(width, size)
                start = np.floor(rng.random(n) * (size - width + 1)).astype(np.int64)
                idx = torch.arange(size, device=device)
                lo = torch.as_tensor(start, device=device)[:, None]
                m = (idx >= lo) & (idx < lo + torch.as_tensor(width, device=device)[:, None])
                x.masked_fill_(m[:, :, None] if axis == 1 else m[:, None, :], self.value)

class SpecAugment(AugmentationStep):
    """SpecAugment frequency and time masks, re-drawn every batch.

    At fit time the rows get a :class:`~skasc.MaskAugmentation`: in every
    training batch each row receives ``n_freq_masks`` bands and
    ``n_time_masks`` frame ranges set to ``mask_value``, each mask of a
    width drawn uniformly from 0 to the maximum width (inclusive; the paper
    uses one mask of each kind, 0-10 wide, set to zero).  Identity at
    predict time.

    Parameters
    ----------
    freq_mask_width : int, default=10
        Largest frequency-mask width in bands.
    time_mask_width : int, default=10
        Largest time-mask width in frames.
    n_freq_masks, n_time_masks : int, default=1
        Masks of each kind per row.
    mask_value : float, default=0.0
        Value written into the masked cells (finite).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import SpecAugment
    >>> Xt = SpecAugment(freq_mask_width=8).fit_transform(np.zeros((2, 16, 51), "float32"))
    >>> Xt.augmentations[0].freq_width
    8
    """

    _parameter_constraints: dict = {
        **AugmentationStep._parameter_constraints,
        "freq_mask_width": [Interval(Integral, 0, None, closed="left")],
        "time_mask_width": [Interval(Integral, 0, None, closed="left")],
        "n_freq_masks": [Interval(Integral, 0, None, closed="left")],
        "n_time_masks": [Interval(Integral, 0, None, closed="left")],
        # finite: an open interval without ends excludes NaN and +-inf
        "mask_value": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(self, freq_mask_width=10, time_mask_width=10, n_freq_masks=1,
                 n_time_masks=1, mask_value=0.0):
        self.freq_mask_width = freq_mask_width
        self.time_mask_width = time_mask_width
        self.n_freq_masks = n_freq_masks
        self.n_time_masks = n_time_masks
        self.mask_value = mask_value

    def _augmentation(self):
        return MaskAugmentation(
            freq_width=int(self.freq_mask_width), time_width=int(self.time_mask_width),
            n_freq=int(self.n_freq_masks), n_time=int(self.n_time_masks),
            value=float(self.mask_value),
        )


