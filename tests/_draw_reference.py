"""NumPy reference of the training-time draws, for the tests.

Training draws its batches with
:func:`skasc.preprocessing._augmentation.draw_batch`: each augmentation
attached to the :class:`~skasc.FeatureSet` draws itself, in torch, on the
training device.  The functions here do the same with plain NumPy, written
apart from the library (the same random numbers in the same order, the
arithmetic of the papers), so that tests can check ``draw_batch`` against an
independent, simpler computation and look at what a network is shown.
"""

import numpy as np

from skasc import CropAugmentation, ImpulseResponseAugmentation, MaskAugmentation, MixStyleAugmentation


def _mask(x, axis, start, width, value):
    """Set ``x[i, start[i]:start[i] + width[i]]`` along ``axis`` to ``value``, in place."""
    idx = np.arange(x.shape[axis])
    m = (idx >= start[:, None]) & (idx < (start + width)[:, None])
    m = m[:, :, None] if axis == 1 else m[:, None, :]
    x[np.broadcast_to(m, x.shape)] = value


def _ranges(n, size, max_width, rng):
    width = rng.integers(0, max_width + 1, size=n) if max_width > 0 else np.zeros(n, np.int64)
    width = np.minimum(width, size)
    start = np.floor(rng.random(n) * (size - width + 1)).astype(np.int64)
    return start, width


def starts(features, rows, rng):
    """Crops (in the order attached), then impulse-response variants."""
    rows = np.asarray(rows)
    out = features.row_start[rows].copy()
    augs = features.augmentations
    for aug in (a for a in augs if isinstance(a, CropAugmentation)):
        lo = features.rec_start[rows]
        n_pos = (features.rec_stop[rows] - features.width - lo) // aug.step + 1
        random_starts = lo + aug.step * np.floor(rng.random(len(rows)) * n_pos).astype(np.int64)
        out = np.where(rng.random(len(rows)) < aug.p, random_starts, out)
    for aug in (a for a in augs if isinstance(a, ImpulseResponseAugmentation)):
        if features.variants is None:
            continue
        take = rng.random(len(rows)) < aug.p
        k = np.floor(rng.random(len(rows)) * features.variants.shape[1]).astype(np.int64)
        if features.variants.shape[1]:
            out = np.where(take, out + features.variants[rows, k], out)
    return out


def apply_masks(x, aug, rng):
    """Set random bands and frames of ``x`` (n, bands, frames) to ``aug.value``, in place.

    Returns the drawn (start, width) pairs, ``freq`` and ``time``, each a
    list with one (start, width) pair of arrays per mask.
    """
    n, bands, frames = x.shape
    drawn = {"freq": [], "time": []}
    for key, axis, count, size, max_width in (("freq", 1, aug.n_freq, bands, aug.freq_width),
                                              ("time", 2, aug.n_time, frames, aug.time_width)):
        for _ in range(count):
            start, width = _ranges(n, size, max_width, rng)
            _mask(x, axis, start, width, aug.value)
            drawn[key].append((start, width))
    return drawn


def mix_style(x, aug, rng):
    """Frequency-MixStyle of one batch ``x`` (n, bands, frames), statistics over frames."""
    if not rng.random() < aug.p:
        return x
    n = x.shape[0]
    lam = rng.beta(aug.alpha, aug.alpha, size=n).astype(np.float32).reshape((n,) + (1,) * (x.ndim - 1))
    perm = rng.permutation(n)
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    sig = np.sqrt((d * d).mean(axis=-1, keepdims=True) + np.float32(aug.eps))
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    return d * (sig_mix / sig) + mu_mix


def draw_view(features, rows, rng):
    """One random training view of ``rows`` of ``features``: shape (n, bands, width).

    Crops (and impulse-response variants), then masks, then
    Frequency-MixStyle are drawn from ``rng`` in the order ``draw_batch``
    draws them; a FeatureSet without augmentations gives its windows.
    """
    rows = np.asarray(rows)
    x = features.windows(rows, starts(features, rows, rng)).copy()
    for aug in features.augmentations:
        if isinstance(aug, MaskAugmentation):
            apply_masks(x, aug, rng)
    for aug in features.augmentations:
        if isinstance(aug, MixStyleAugmentation):
            x = mix_style(x, aug, rng)
    return x
