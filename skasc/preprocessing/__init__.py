"""scikit-learn transformers of the paper's audio front end.

The four steps keep one row per 1-s clip from start to end, so ``y`` stays
aligned inside an ordinary :class:`sklearn.pipeline.Pipeline`:

``Reassembler`` -> ``LogMel`` -> ``RandomCrop`` -> ``SpecAugment`` -> classifier

* At **fit** time, :class:`Reassembler` gives each clip its 10-s parent
  recording, :class:`LogMel` computes the features once per recording, and
  :class:`RandomCrop` / :class:`SpecAugment` attach their augmentation to
  the rows.  The classifier re-draws crops and masks for every batch of
  every epoch (see :class:`~skasc.FeatureSet`).
* At **predict** time (``transform``), every clip stands alone: features
  are computed on the 1-s clip itself and the augmentation steps are the
  identity, which is the paper's test protocol.

Two steps of the DCASE 2024/2025 recipes fit the same scheme (see the
generalization guide): :class:`DeviceImpulseResponse`, between
``Reassembler`` and ``LogMel``, has ``LogMel`` compute the features of a few
convolved copies of each recording once, beside the originals, and
:class:`FreqMixStyle`, after ``LogMel``, attaches Frequency-MixStyle, drawn
per batch like the masks.

Modules, in the order a row goes through them: ``_input`` (rows to
AudioSet / FeatureSet), ``_reassemble``, ``_impulse`` (the step and its
augmentation), ``_recording_audio`` (reading a recording once) and
``_logmel``; then the augmentations, each with its step: ``_crop``,
``_masks``, ``_mixstyle``, and ``_mixup`` (the classifiers' mixup), all
drawn by the one loop of ``_augmentation``.  What a path row names is
:mod:`skasc._rows`.
"""

from .._rows import row_recording
from ._crop import CropAugmentation, RandomCrop
from ._impulse import DeviceImpulseResponse, ImpulseResponseAugmentation
from ._input import as_feature_set
from ._logmel import LogMel
from ._masks import MaskAugmentation, SpecAugment
from ._mixstyle import FreqMixStyle, MixStyleAugmentation
from ._reassemble import Reassembler

__all__ = [
    "Reassembler",
    "DeviceImpulseResponse",
    "LogMel",
    "RandomCrop",
    "SpecAugment",
    "FreqMixStyle",
    "as_feature_set",
    "row_recording",
    "CropAugmentation",
    "ImpulseResponseAugmentation",
    "MaskAugmentation",
    "MixStyleAugmentation",
]
