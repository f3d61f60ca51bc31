"""What every training-time augmentation is, and the one loop that draws them.

An augmentation step of the Pipeline (:class:`~skasc.RandomCrop`,
:class:`~skasc.SpecAugment`, :class:`~skasc.FreqMixStyle`, and
:class:`~skasc.LogMel` after :class:`~skasc.DeviceImpulseResponse`)
attaches, at fit time, one :class:`Augmentation` to the
:class:`~skasc.FeatureSet`: a frozen object holding the parameters, which
draws itself on a :class:`Batch` from the classifier's generator
(:meth:`Augmentation.draw`).  :func:`draw_batch` is the only place a
training batch is drawn: it loops over the attached augmentations in
stage order (window choices, then the gather, then changes of the
gathered batch), so the random numbers, and therefore training, depend
only on the seed, the epoch and the batch.  Each family lives in its own
module with its step: ``_crop``, ``_impulse``, ``_masks``, ``_mixstyle``,
``_mixup`` (the classifier's ``mixup_alpha``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from ._input import as_feature_set

__all__ = ["Augmentation", "Batch", "draw_starts", "draw_batch", "AugmentationStep"]

#: Stages below this choose each row's window (they move ``Batch.starts``);
#: the batch is gathered from the store after them, and the stages from it
#: on change the gathered ``Batch.x``.
GATHER = 10


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Base of the training-time augmentations.

    Subclasses are frozen dataclasses of their parameters with a class-level
    ``stage`` (their place in the draw order: below :data:`GATHER` they pick
    windows, from it on they change the gathered batch) and a :meth:`draw`.
    """

    stage: ClassVar[int] = GATHER

    def draw(self, batch, rng):
        """Draw this augmentation for ``batch`` from ``rng`` and apply it, in place."""
        raise NotImplementedError

    def window_starts(self, features, step):
        """Window starts this augmentation can draw, at most every ``step``
        frames, for caching teacher outputs (None: it moves no window)."""
        return None


class Batch:
    """A training batch while it is drawn.

    Attributes
    ----------
    features : FeatureSet
    rows : ndarray of int64
        The batch's rows of ``features``.
    starts : ndarray of int64
        The window start (store frame) of each row: its own window until a
        window stage moves it.
    x : torch.Tensor of shape (n, bands, width) or None
        The gathered features (None before the gather).
    targets : list of torch.Tensor
        Per-row targets that mixing augmentations mix along with ``x``
        (one-hot labels, teacher probabilities); set by the caller.
    """

    def __init__(self, features, rows):
        self.features = features
        self.rows = np.asarray(rows, dtype=np.int64)
        self.starts = features.row_start[self.rows].copy()
        self.x = None
        self.targets = []

    def __len__(self):
        return len(self.rows)


def _ordered(features):
    return sorted(features.augmentations, key=lambda aug: aug.stage)  # stable: attach order within a stage


def draw_starts(features, rows, rng):
    """The window start (store frame) of each row after the window stages
    (crops, impulse-response variants), drawn from ``rng`` as
    :func:`draw_batch` draws them."""
    batch = Batch(features, rows)
    for aug in _ordered(features):
        if aug.stage < GATHER:
            aug.draw(batch, rng)
    return batch.starts


def draw_batch(features, rows, rng, store, device="cpu"):
    """One random training view of ``rows``: the only place batches are drawn.

    ``store`` is ``torch.as_tensor(features.store)``, possibly on a GPU: the
    batch is gathered and changed on that device (a store on disk, ``store``
    None, is read for the batch's windows and the batch moved to
    ``device``), with one gather and one
    transposing copy (the masks are then written in place into the
    contiguous batch; on a strided view they cost more than the copies they
    save).

    Returns
    -------
    batch : Batch
        ``batch.x`` of shape (n, bands, width), contiguous; ``batch.starts``
        the window drawn for each row.
    """
    batch = Batch(features, rows)
    augmentations = _ordered(features)
    for aug in augmentations:
        if aug.stage < GATHER:
            aug.draw(batch, rng)
    if store is None:  # on disk: (n, width, bands) read from the file
        x = torch.from_numpy(features.store.windows(batch.starts, features.width)).to(device)
    else:
        device = store.device
        frames = torch.as_tensor(batch.starts, device=device)[:, None] + torch.arange(features.width, device=device)
        x = store.index_select(0, frames.reshape(-1)).view(len(batch), features.width, -1)
    batch.x = x.transpose(1, 2).contiguous()
    for aug in augmentations:
        if aug.stage >= GATHER:
            aug.draw(batch, rng)
    return batch


class AugmentationStep(TransformerMixin, BaseEstimator):
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


