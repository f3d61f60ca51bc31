"""Frequency-MixStyle: :class:`FreqMixStyle` attaches a :class:`MixStyleAugmentation`."""

from __future__ import annotations

import dataclasses
from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._augmentation import Augmentation, AugmentationStep

__all__ = ["MixStyleAugmentation", "FreqMixStyle"]


@dataclasses.dataclass(frozen=True)
class MixStyleAugmentation(Augmentation):
    """Frequency-MixStyle to draw at training time (see :class:`~skasc.FreqMixStyle`).

    With probability ``p`` per batch, each row's per-band mean and standard
    deviation over its frames (``eps`` added to the variance) are replaced
    by a ``Beta(alpha, alpha)`` mix of its own and those of a row drawn by a
    random permutation of the batch.

    Examples
    --------
    >>> from skasc import MixStyleAugmentation
    >>> MixStyleAugmentation()
    MixStyleAugmentation(p=0.4, alpha=0.3, eps=1e-06)
    """

    p: float = 0.4
    alpha: float = 0.3
    eps: float = 1e-6

    stage: ClassVar[int] = 30

    def draw(self, batch, rng):
        """Draw whether the batch is restyled (one uniform number) and, if
        it is, a Beta weight per row and a permutation of the rows; mix the
        per-band statistics over the frames of ``batch.x``."""
        if not rng.random() < self.p:
            return
        x = batch.x
        n = x.shape[0]
        lam = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        perm = torch.as_tensor(rng.permutation(n), device=x.device)
        lam = torch.as_tensor(lam, device=x.device).view((n,) + (1,) * (x.ndim - 1))
        # two passes: torch.var_mean over a short last axis is several times slower
        mu = x.mean(dim=-1, keepdim=True)
        d = x - mu
        sig = ((d * d).mean(dim=-1, keepdim=True) + self.eps).sqrt()
        mu_mix = lam * mu + (1 - lam) * mu[perm]
        sig_mix = lam * sig + (1 - lam) * sig[perm]
        batch.x = d * (sig_mix / sig) + mu_mix

class FreqMixStyle(AugmentationStep):
    """Frequency-MixStyle, re-drawn every batch.

    With probability ``p`` a training batch is restyled: each row's mean
    and standard deviation over its frames, per frequency band, are
    normalised away and replaced by a mix of its own and those of another
    row of the batch (a random permutation), weighted by
    ``lam ~ Beta(alpha, alpha)`` drawn per row::

        mu, sig = x.mean(frames), sqrt(x.var(frames) + eps)      # per row and band
        x = (x - mu) / sig * (lam * sig + (1 - lam) * sig[perm]) + lam * mu + (1 - lam) * mu[perm]

    The per-band statistics of a log-mel spectrogram carry much of the
    recording device's frequency response, so mixing them simulates
    devices between those of the batch (Schmid et al., DCASE 2022
    workshop; the Frequency-MixStyle of the DCASE 2024 and 2025 Task 1
    baselines).  At fit time the rows get a
    :class:`~skasc.MixStyleAugmentation`, applied by the classifier to every
    training batch after the crops and masks, from the same seeded
    generator; at predict time (``transform``) the step is the identity.

    Defaults are the DCASE 2024 Task 1 baseline's (``mixstyle_p=0.4``,
    ``mixstyle_alpha=0.3``, ``eps=1e-6`` in CPJKU/dcase2024_task1_baseline),
    chosen so that the figures can be compared with it.  As there, the
    statistics are taken over time only, per row and band; the standard
    deviation here is the population one (the baseline's unbiased
    variance differs by a factor 51/50 on 51-frame rows).

    Parameters
    ----------
    p : float, default=0.4
        Probability that a batch is restyled.
    alpha : float, default=0.3
        Parameter of the Beta distribution of the mixing weights (> 0;
        small values keep most rows close to themselves or their partner).
    eps : float, default=1e-6
        Added to the variance before the square root (> 0).

    Attributes
    ----------
    feature_shape_ : tuple
        (channels, bands, frames) of a row seen at fit time.
    n_features_in_ : int
        ``bands * frames``.

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import FreqMixStyle
    >>> Xt = FreqMixStyle(p=1.0).fit_transform(np.zeros((4, 8, 51), "float32"))
    >>> Xt.augmentations
    (MixStyleAugmentation(p=1.0, alpha=0.3, eps=1e-06),)
    """

    _parameter_constraints: dict = {
        **AugmentationStep._parameter_constraints,
        "p": [Interval(Real, 0, 1, closed="both")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "eps": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, p=0.4, alpha=0.3, eps=1e-6):
        self.p = p
        self.alpha = alpha
        self.eps = eps

    def _augmentation(self):
        return MixStyleAugmentation(p=float(self.p), alpha=float(self.alpha), eps=float(self.eps))
