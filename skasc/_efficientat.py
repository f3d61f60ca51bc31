"""EfficientAT's MobileNetV3 and its log-mel front end, written from the
published description and the checkpoints' own parameter names and shapes.

Schmid, Koutini and Widmer, "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation" (ICASSP 2023) adapt torchvision's
MobileNetV3-Large to log-mel input: one input channel, a width multiplier
from 0.1 to 4.0 (``mn01`` ... ``mn40``), channel-wise squeeze-excitation
with a sigmoid gate, batch norm with ``eps=1e-3``, and a two-layer MLP head
(global average pool, Linear to 1280 x width, Hardswish, dropout, Linear to
the classes).  The parameter names follow the published checkpoints
(``features.0`` ... ``features.16``, ``classifier.2``, ``classifier.5``),
so those load with ``strict=True``.

The front end (:class:`EfficientATFrontEnd`) is the authors' evaluation
mode: 32 kHz, pre-emphasis ``[-0.97, 1]``, STFT (n_fft 1024, hop 320, a
symmetric Hann window of 800 samples, centred frames with reflection
padding), power spectrum, 128 Kaldi-style triangular mel bands on
``mel = 1127 ln(1 + f / 700)`` from 0 to 15 kHz (a zero column for the
Nyquist bin), ``log(x + 1e-5)``, then ``(x + 4.5) / 5``.  The mel banks are
Kaldi's (triangles in mel, unnormalised), not librosa's (triangles in Hz,
Slaney-normalised), which is why they are computed here rather than with
:func:`librosa.filters.mel`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["EfficientATFrontEnd", "MobileNetAT", "kaldi_mel_banks", "parse_model_name", "WIDTHS"]

#: Width multipliers of the published AudioSet checkpoints, by model name.
WIDTHS = {"mn01": 0.1, "mn02": 0.2, "mn04": 0.4, "mn05": 0.5, "mn10": 1.0,
          "mn20": 2.0, "mn30": 3.0, "mn40": 4.0}

#: Batch-norm momentum while training.  EfficientAT trained on AudioSet's two
#: million clips with 0.01; fine-tuning on a few thousand clips with the
#: running statistics that slow lags behind the changing weights (on the
#: Kitchen20 development clips, 10 epochs of fine-tuning mn04_as reached
#: 67.2 % with 0.01 and 69.7 % with 0.1), so skasc uses torch's default 0.1.
#: It plays no part in evaluation mode or in loading a checkpoint.
BN_MOMENTUM = 0.1

_NAME = re.compile(r"^mn(\d\d)(_as(_ext)?)?$")


def parse_model_name(name):
    """Width multiplier of an EfficientAT model name (``"mn04_as"`` -> 0.4).

    Accepts ``mnXY`` with an optional ``_as`` / ``_as_ext`` suffix, ``XY``
    from ``01`` to ``40`` (the width in tenths).
    """
    m = _NAME.match(str(name))
    if not m or not 1 <= int(m.group(1)) <= 40:
        raise ValueError(
            f"model={name!r} is not an EfficientAT MobileNet name: expected 'mnXY_as' with XY "
            f"the width in tenths from 01 to 40, e.g. {', '.join(k + '_as' for k in WIDTHS)}"
        )
    return int(m.group(1)) / 10


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's rounding of channel counts to a multiple of ``divisor``
    (never more than 10 % below ``v``)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class BlockConfig:
    """One inverted-residual block: channels after the width multiplier."""

    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int


# MobileNetV3-Large (Howard et al. 2019, table 1): in, kernel, expanded, out,
# squeeze-excitation, hardswish ("HS") or ReLU, stride -- before the width
# multiplier.  EfficientAT keeps it, with strides (2, 2, 2, 2) at C1-C4.
_LARGE = [
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]


def block_configs(width):
    """The 15 blocks' configurations at width multiplier ``width``."""
    adjust = lambda c: make_divisible(c * width)  # noqa: E731
    return [BlockConfig(adjust(i), k, adjust(e), adjust(o), se, hs, s)
            for i, k, e, o, se, hs, s in _LARGE]


def _conv_bn_act(cin, cout, kernel, stride=1, groups=1, act=None):
    """torchvision's Conv2dNormActivation layout: ``.0`` conv, ``.1`` BN, ``.2`` activation."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=0.001, momentum=BN_MOMENTUM)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel squeeze-excitation: mean over frequency and time, two Linear
    layers (ReLU between), a sigmoid gate per channel."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x):
        s = x.mean(dim=(2, 3))
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's container of squeeze-excitations over several axes,
    combined by their maximum; the published models use the channel axis
    only, i.e. one :class:`SqueezeExcitation`."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.conc_se_layers = nn.ModuleList(
            [SqueezeExcitation(channels, make_divisible(channels // reduction))])

    def forward(self, x):
        outs = [se(x) for se in self.conc_se_layers]
        return outs[0] if len(outs) == 1 else torch.stack(outs).amax(dim=0)


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (k x k, strided), squeeze-excite, project
    (1x1, no activation); a residual sum when the shape is kept."""

    def __init__(self, cfg):
        super().__init__()
        act = nn.Hardswish if cfg.use_hs else nn.ReLU
        layers = []
        if cfg.expanded_channels != cfg.input_channels:
            layers.append(_conv_bn_act(cfg.input_channels, cfg.expanded_channels, 1, act=act))
        layers.append(_conv_bn_act(cfg.expanded_channels, cfg.expanded_channels, cfg.kernel,
                                   cfg.stride, groups=cfg.expanded_channels, act=act))
        if cfg.use_se:
            layers.append(ConcurrentSE(cfg.expanded_channels))
        layers.append(_conv_bn_act(cfg.expanded_channels, cfg.out_channels, 1))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = cfg.stride == 1 and cfg.input_channels == cfg.out_channels

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y


class MobileNetAT(nn.Module):
    """EfficientAT's MobileNetV3 for log-mel input of shape (batch, 1, mels, frames).

    Parameters
    ----------
    width : float, default=0.4
        Width multiplier (0.4: ``mn04``).
    n_classes : int, default=527
        Outputs of the last Linear layer (527: AudioSet).
    dropout : float, default=0.2
        Dropout of the MLP head (active in training mode only).

    Attributes
    ----------
    embedding_size : int
        Channels of the pooled embedding (6 x the last block's output).

    Examples
    --------
    >>> import torch
    >>> from skasc._efficientat import MobileNetAT
    >>> net = MobileNetAT(width=0.4).eval()
    >>> sum(p.numel() for p in net.parameters())
    983599
    >>> logits, embedding = net.forward_with_embedding(torch.zeros(2, 1, 128, 100))
    >>> tuple(logits.shape), tuple(embedding.shape)
    ((2, 527), (2, 384))
    """

    def __init__(self, width=0.4, n_classes=527, dropout=0.2):
        super().__init__()
        cfgs = block_configs(width)
        layers = [_conv_bn_act(1, cfgs[0].input_channels, 3, stride=2, act=nn.Hardswish)]
        layers += [InvertedResidual(c) for c in cfgs]
        last_in = cfgs[-1].out_channels
        self.embedding_size = 6 * last_in
        layers.append(_conv_bn_act(last_in, self.embedding_size, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(start_dim=1),
            nn.Linear(self.embedding_size, make_divisible(1280 * width)),
            nn.Hardswish(),
            nn.Dropout(p=dropout),
            nn.Linear(make_divisible(1280 * width), n_classes),
        )
        self.width = width
        self.n_classes = n_classes
        self.body_frozen = False
        self._initialise()

    def _initialise(self):
        # torchvision's MobileNetV3 initialisation (used when no checkpoint is loaded)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def replace_head(self, n_classes):
        """A new last Linear layer with ``n_classes`` outputs (fresh weights)."""
        old = self.classifier[5]
        new = nn.Linear(old.in_features, n_classes).to(old.weight.device)
        nn.init.normal_(new.weight, 0, 0.01)
        nn.init.zeros_(new.bias)
        self.classifier[5] = new
        self.n_classes = n_classes
        return self

    def freeze_body(self, frozen=True):
        """Train the MLP head only: the body's parameters get no gradients and
        its batch norms keep their running statistics (eval mode) while the
        network trains."""
        self.body_frozen = bool(frozen)
        self.features.requires_grad_(not frozen)
        self.features.train(self.training and not frozen)
        return self

    def train(self, mode=True):
        super().train(mode)
        if self.body_frozen:
            self.features.eval()
        return self

    def _body(self, x):
        if self.body_frozen:
            with torch.no_grad():
                return self.features(x)
        return self.features(x)

    def forward_with_embedding(self, x):
        """(logits, pooled embedding) of log-mel input (batch, 1, mels, frames)."""
        x = self._body(x)
        return self.classifier(x), x.mean(dim=(2, 3))

    def forward(self, x):
        return self.classifier(self._body(x))


# -- front end -------------------------------------------------------------------


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def kaldi_mel_banks(n_mels=128, n_fft=1024, sr=32000, fmin=0.0, fmax=15000.0):
    """Kaldi's triangular mel filters, shape (n_mels, n_fft // 2 + 1).

    Triangles equally spaced on ``mel = 1127 ln(1 + f / 700)`` between
    ``fmin`` and ``fmax``, evaluated at the first ``n_fft // 2`` FFT bins
    (Kaldi drops the Nyquist bin: its column is zero), unnormalised.
    """
    n_bins = n_fft // 2
    lo, hi = _mel(fmin), _mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    left = lo + np.arange(n_mels)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    mel = _mel(sr / n_fft * np.arange(n_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


class EfficientATFrontEnd(nn.Module):
    """The authors' log-mel front end in evaluation mode (see the module docs).

    Input (batch, samples) at 32 kHz; output (batch, 128, frames) with
    ``frames = 1 + (samples - 1) // 320`` (pre-emphasis drops one sample).
    No parameters; deterministic.

    Examples
    --------
    >>> import torch
    >>> from skasc._efficientat import EfficientATFrontEnd
    >>> EfficientATFrontEnd()(torch.zeros(1, 32000)).shape
    torch.Size([1, 128, 100])
    """

    sr = 32000
    n_fft = 1024
    win_length = 800
    hop_length = 320
    n_mels = 128

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=False),
                             persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        self.register_buffer("mel_banks", torch.from_numpy(kaldi_mel_banks(self.n_mels, self.n_fft,
                                                                           self.sr)),
                             persistent=False)

    def forward(self, x):
        x = nn.functional.conv1d(x[:, None, :], self.preemphasis)[:, 0]
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, pad_mode="reflect", normalized=False,
                          return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2
        mel = torch.matmul(self.mel_banks, power)
        return (torch.log(mel + 1e-5) + 4.5) / 5.0

    @classmethod
    def n_frames(cls, n_samples):
        """Frames of a signal of ``n_samples`` samples."""
        return 1 + (int(n_samples) - 1) // cls.hop_length
