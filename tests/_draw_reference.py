"""NumPy reference of the training-time draws, for the tests.

Training draws its batches with :func:`skasc._training.draw_batch` on the
training device.  The functions here do the same with plain NumPy, from the
same pieces of :class:`~skasc.FeatureSet` (crop starts, mask plan,
Frequency-MixStyle), so that tests can check ``draw_batch`` against an
independent, simpler computation and look at what a network is shown.
"""

import numpy as np

from skasc._featureset import _mask_plan


def _mask(x, axis, start, width, value):
    """Set ``x[i, start[i]:start[i] + width[i]]`` along ``axis`` to ``value``, in place."""
    idx = np.arange(x.shape[axis])
    m = (idx >= start[:, None]) & (idx < (start + width)[:, None])
    m = m[:, :, None] if axis == 1 else m[:, None, :]
    x[np.broadcast_to(m, x.shape)] = value


def draw_view(features, rows, rng):
    """One random training view of ``rows`` of ``features``: shape (n, bands, width).

    Crops (and impulse-response variants), then masks, then
    Frequency-MixStyle are drawn from ``rng`` in the order ``draw_batch``
    draws them; a FeatureSet without augmentations gives its windows.
    """
    rows = np.asarray(rows)
    x = features.windows(rows, features.draw_starts(rows, rng))
    plan = features.draw_mask_plan(len(rows), rng)
    if plan:
        x = x.copy()
        for axis, start, width, value in plan:
            _mask(x, axis, start, width, value)
    return features.mix_styles(x, rng)


def apply_masks(x, aug, rng):
    """Set random bands and frames of ``x`` (n, bands, frames) to ``aug.value``, in place.

    Returns the drawn (start, width) pairs, ``freq`` and ``time``, each a
    list with one (start, width) pair of arrays per mask.
    """
    n, bands, frames = x.shape
    drawn = {"freq": [], "time": []}
    for axis, start, width, value in _mask_plan(aug, n, bands, frames, rng):
        _mask(x, axis, start, width, value)
        drawn["freq" if axis == 1 else "time"].append((start, width))
    return drawn
