"""skasc: scikit-learn compatible low-complexity acoustic scene classification.

The DCASE 2023 Task 1 system of Liang et al. (depthwise-separable CNN,
SpecAugment, mixup, knowledge distillation from a fused teacher ensemble)
as scikit-learn transformers and skorch-based classifiers.
"""

from ._featureset import AudioLink, AudioSet, FeatureSet
from .classifiers import DistilledStudent, DwsCNNClassifier, EnsembleTeacher
from .complexity import complexity_report
from .device_specific import DeviceSpecificClassifier
from .export import OnnxClassifier, export_onnx
from .preprocessing import (
    CropAugmentation,
    DeviceImpulseResponse,
    FreqMixStyle,
    ImpulseResponseAugmentation,
    LogMel,
    MaskAugmentation,
    MixStyleAugmentation,
    RandomCrop,
    Reassembler,
    SpecAugment,
)
from .pretrained import PretrainedClassifier
from .recordings import aggregate_proba, predict_recordings, recording_labels

from ._version import __version__

__all__ = [
    "AudioLink",
    "AudioSet",
    "CropAugmentation",
    "DeviceImpulseResponse",
    "DeviceSpecificClassifier",
    "DistilledStudent",
    "DwsCNNClassifier",
    "EnsembleTeacher",
    "FeatureSet",
    "FreqMixStyle",
    "ImpulseResponseAugmentation",
    "LogMel",
    "MaskAugmentation",
    "MixStyleAugmentation",
    "RandomCrop",
    "Reassembler",
    "SpecAugment",
    "aggregate_proba",
    "complexity_report",
    "export_onnx",
    "OnnxClassifier",
    "PretrainedClassifier",
    "predict_recordings",
    "recording_labels",
    "__version__",
]
