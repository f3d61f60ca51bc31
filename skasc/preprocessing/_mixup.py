"""Mixup of a training batch: the classifiers' ``mixup_alpha``."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ._augmentation import Augmentation

__all__ = ["MixupAugmentation"]


@dataclasses.dataclass(frozen=True)
class MixupAugmentation(Augmentation):
    """Mixup (Zhang et al., 2018) of a batch and of its targets.

    One ``lam ~ Beta(alpha, alpha)`` and one permutation of the rows per
    batch; every row becomes ``lam * x + (1 - lam) * x[perm]``, and so do
    its targets (labels, teacher probabilities).  Drawn after everything the
    FeatureSet carries and after the targets are known.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skasc.preprocessing._augmentation import Batch
    >>> from skasc.preprocessing._mixup import MixupAugmentation
    >>> from skasc import FeatureSet
    >>> batch = Batch(FeatureSet.from_array(np.zeros((2, 1, 3), "float32")), [0, 1])
    >>> batch.x, batch.targets = torch.tensor([[[0.0]], [[1.0]]]), [torch.eye(2)]
    >>> MixupAugmentation(alpha=0.3).draw(batch, np.random.default_rng(0))
    >>> bool(torch.allclose(batch.x.flatten(), batch.targets[0][:, 1]))
    True
    """

    alpha: float = 0.3

    stage: ClassVar[int] = 40

    def draw(self, batch, rng):
        self.apply(batch, *self.sample(rng, len(batch)))

    def sample(self, rng, n):
        """``(lam, perm)`` for a batch of ``n`` rows: ``lam`` a float, ``perm``
        an int64 array (what :meth:`draw` uses, in the same order)."""
        return float(rng.beta(self.alpha, self.alpha)), rng.permutation(n)

    def apply(self, batch, lam, perm):
        """Mix ``batch.x`` and ``batch.targets`` with a drawn ``(lam, perm)``."""
        perm = torch.as_tensor(perm, device=batch.x.device)
        # in place, the same products and sum: one new batch-sized tensor instead of four
        partners = batch.x[perm].mul_(1.0 - lam)
        batch.x = batch.x.mul_(lam).add_(partners)
        batch.targets = [lam * t + (1.0 - lam) * t[perm] for t in batch.targets]
