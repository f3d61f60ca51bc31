"""The augmentation steps after LogMel: attach at fit, identity at predict."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from .._featureset import CropAugmentation, MaskAugmentation, MixStyleAugmentation
from ._input import as_feature_set

__all__ = ["RandomCrop", "SpecAugment", "FreqMixStyle"]


class _AugmentationStep(TransformerMixin, BaseEstimator):
    """Attach an augmentation at fit time; identity at predict time."""

    _parameter_constraints: dict = {}

    def _augmentation(self):
        raise NotImplementedError

    def _check_can_act(self, features):
        """Say so (warn or raise) when the augmentation can change no row of ``features``."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Remember the feature shape.

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)
            Features, e.g. the output of :class:`LogMel`.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        features = as_feature_set(X)
        self.feature_shape_ = features.feature_shape
        self.n_features_in_ = features.shape[1]
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """The features with this step's augmentation attached (training view).

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)
        y : None
            Ignored.

        Returns
        -------
        features : FeatureSet
            The same rows and store, one more augmentation attached.
        """
        self.fit(X, y)
        features = as_feature_set(X)
        self._check_can_act(features)
        return features.with_augmentation(self._augmentation())

    def transform(self, X):
        """The features without augmentations (predict-time view).

        Parameters
        ----------
        X : FeatureSet or array-like of shape (n_clips, n_bands, n_frames)

        Returns
        -------
        features : FeatureSet
            The same rows, no augmentation attached.
        """
        check_is_fitted(self, "feature_shape_")
        features = as_feature_set(X)
        if features.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {features.shape[1]} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        return features.without_augmentations()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class RandomCrop(_AugmentationStep):
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
        **_AugmentationStep._parameter_constraints,
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


class SpecAugment(_AugmentationStep):
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
        **_AugmentationStep._parameter_constraints,
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


class FreqMixStyle(_AugmentationStep):
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
        **_AugmentationStep._parameter_constraints,
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
