"""Training machinery shared by the classifiers: one place for every random draw.

The skorch net trains on row *indices*; :class:`BatchDrawer` is its
``collate_fn`` and turns a list of indices into a batch: the crop and
SpecAugment masks attached to the :class:`~skasc.FeatureSet` by the
pipeline steps, then mixup, all drawn from one generator seeded by
``(seed, epoch, batch)``.  Training is therefore reproducible, every epoch
sees new crops/masks/mixup pairs, validation/predict never see any (they
do not go through this collate), and a run resumed at epoch ``e`` draws
exactly what an uninterrupted run draws there.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History


def check_device(device, name="device"):
    """``device`` as a :class:`torch.device`; ValueError naming ``name`` if it
    does not parse or names a CUDA device this machine does not have."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{name}={device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1'): {exc}"
        ) from None
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"{name}={device!r}: no such CUDA device here ({torch.cuda.device_count()} visible)"
        )
    return parsed


class BatchDrawer:
    """``collate_fn`` that draws the augmented training view of a batch.

    Parameters
    ----------
    features : FeatureSet
    n_classes : int
    mixup_alpha : float
        Mixup's Beta(alpha, alpha); 0 or None disables mixup.
    seed : int
    """

    def __init__(self, features, n_classes, mixup_alpha, seed, device="cpu"):
        self.features = features
        self.n_classes = n_classes
        self.mixup_alpha = mixup_alpha
        self.seed = int(seed)
        self.device = device
        # on CPU this shares the FeatureSet's memory; on a GPU the features
        # are copied there once and every batch is drawn on the device
        with warnings.catch_warnings():
            # a read-only (e.g. joblib memory-mapped) store is fine: batches
            # are gathered into new tensors, the store is never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self.store = torch.as_tensor(features.store).to(device)
        self.epoch = 0
        self._batch = 0

    def release(self):
        """Drop the training data (kept out of pickles of the fitted model)."""
        self.features = self.store = None

    def set_epoch(self, epoch):
        self.epoch = int(epoch)
        self._batch = 0

    def rng(self):
        rng = np.random.default_rng([self.seed, self.epoch, self._batch])
        self._batch += 1
        return rng

    def __call__(self, items):
        rows = np.fromiter((int(i) for i, _ in items), dtype=np.int64, count=len(items))
        labels = torch.as_tensor(np.fromiter((int(t) for _, t in items), np.int64, len(items)),
                                 device=self.store.device)
        rng = self.rng()
        x = self.features.draw_tensor(rows, rng, self.store).unsqueeze(1)
        target = F.one_hot(labels, self.n_classes).to(torch.float32)
        if self.mixup_alpha:
            lam = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            perm = torch.as_tensor(rng.permutation(len(rows)), device=x.device)
            x = lam * x + (1.0 - lam) * x[perm]
            target = lam * target + (1.0 - lam) * target[perm]
        return x.contiguous(memory_format=torch.channels_last), target


class EpochSeed(Callback):
    """Tell the BatchDrawer and the shuffling generator which epoch runs."""

    def __init__(self, drawer, generator):
        self.drawer = drawer
        self.generator = generator

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)  # 1-based: the net appended this epoch already
        self.drawer.set_epoch(epoch)
        self.generator.manual_seed(int(np.random.default_rng([self.drawer.seed, epoch, 2**20]).integers(2**62)))


class CosineLR(Callback):
    """Cosine decay from ``lr`` at the first epoch towards 0 after ``max_epochs``.

    The rate is a closed-form function of the epoch number, set at the start
    of every epoch, so a run resumed from a checkpoint continues on exactly
    the same schedule (no scheduler state to restore).
    """

    def __init__(self, lr, max_epochs):
        self.lr = lr
        self.max_epochs = max_epochs

    def lr_at(self, epoch):
        return self.lr * 0.5 * (1.0 + np.cos(np.pi * (epoch - 1) / self.max_epochs))

    def on_epoch_begin(self, net, **kwargs):
        lr = float(self.lr_at(len(net.history)))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr
        net.history.record("lr", lr)


def soft_cross_entropy(logits, target):
    """Cross-entropy against probability targets (mixed one-hot labels)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def distillation_loss(student_logits, target, teacher_logits, temperature, soft_weight):
    """(1-w) CE(student, labels) + w T^2 KL(teacher_T || student_T) (Hinton et al.)."""
    hard = soft_cross_entropy(student_logits, target)
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    return (1.0 - soft_weight) * hard + soft_weight * soft


class FusedTeacher(torch.nn.Module):
    """Frozen teacher networks whose logits are fused by averaging.

    ``fusion="logits"`` averages logits; ``"proba"`` averages probabilities
    and returns their log (logits of the averaged distribution).
    """

    def __init__(self, modules, fusion="logits"):
        super().__init__()
        self.members = torch.nn.ModuleList(modules)
        self.fusion = fusion
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):  # a teacher never leaves eval mode
        return super().train(False)

    def forward(self, x):
        outs = torch.stack([m(x) for m in self.members])
        if self.fusion == "logits":
            return outs.mean(0)
        return torch.logsumexp(F.log_softmax(outs, dim=2), dim=0) - np.log(len(self.members))


# -- checkpoints -------------------------------------------------------------


def _update(h, array):
    h.update(memoryview(np.ascontiguousarray(array)))


def training_fingerprint(features, y, description, extra_arrays=()):
    """Hex digest of everything a training run depends on.

    The feature frames every row can reach (its recording's span of the
    store), the row -> recording/window mapping, the augmentations attached
    to the FeatureSet, the encoded labels, ``description`` (parameters and
    classes, as text) and ``extra_arrays`` (e.g. a teacher's weights).
    BLAKE2b over the arrays' memory (the store is hashed in place, nothing
    is pickled): about 1 GB/s.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(description.encode())
    spans = np.unique(np.stack([features.rec_start, features.rec_stop], axis=1), axis=0)
    for a, b in spans:
        _update(h, features.store[a:b])  # consecutive rows of a C-contiguous store
    for array in (features.rec_start, features.rec_stop, features.row_start, np.asarray(y)):
        _update(h, np.asarray(array, dtype=np.int64))
    h.update(repr((features.width, features.n_bands, features.augmentations)).encode())
    for array in extra_arrays:
        _update(h, array)
    return h.hexdigest()


_CHECKPOINT_KEYS = {"format", "fingerprint", "finished", "module", "optimizer", "history"}


class EpochCheckpoint(Callback):
    """Save the module, optimizer and history after every finished epoch.

    One file, written under a temporary name and moved into place with
    :func:`os.replace`, so a crash or Ctrl-C while saving leaves the previous
    epoch's checkpoint intact: the file on disk always holds a whole epoch.
    ``finished`` is set when training ended normally (all epochs, or early
    stopping), so a later fit does not train it further.
    """

    def __init__(self, path, fingerprint):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def save(self, net, finished):
        state = dict(format=1, fingerprint=self.fingerprint, finished=bool(finished),
                     module=net.module_.state_dict(), optimizer=net.optimizer_.state_dict(),
                     history=json.dumps(net.history.to_list()))
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            torch.save(state, tmp)
            with open(tmp, "r+b") as f:
                os.fsync(f.fileno())  # on disk before it replaces the last good epoch
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def on_epoch_end(self, net, **kwargs):
        self.save(net, finished=False)

    def on_train_end(self, net, **kwargs):
        self.save(net, finished=True)


def resume_from_checkpoint(net, path, fingerprint):
    """Load the checkpoint at ``path`` into the initialized ``net``.

    Returns whether training had finished.  A file that cannot be read as
    a skasc checkpoint of this very run raises ValueError naming it.
    """
    def broken(why):
        return ValueError(
            f"checkpoint file {str(path)!r} {why}; delete it (or its folder) to train afresh"
        )

    try:
        state = torch.load(path, map_location=net.device, weights_only=True)
    except Exception as exc:  # torch raises EOFError, RuntimeError, UnpicklingError...
        raise broken(f"is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not _CHECKPOINT_KEYS <= set(state):
        raise broken("is not a skasc checkpoint")
    if state["fingerprint"] != fingerprint:
        raise broken("was written for other data or parameters (its fingerprint differs)")
    try:
        net.module_.load_state_dict(state["module"])
        net.optimizer_.load_state_dict(state["optimizer"])
        net.history = History(json.loads(state["history"]))
    except Exception as exc:
        raise broken(f"does not match the network ({type(exc).__name__}: {exc})") from exc
    return bool(state["finished"])


# -- the net -------------------------------------------------------------------


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt past skorch's partial_fit, which swallows it."""


def _raised_by_early_stopping(exc):
    # skorch's EarlyStopping ends training by raising KeyboardInterrupt from
    # its on_epoch_end: that one is a normal end of training, not Ctrl-C
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code is EarlyStopping.on_epoch_end.__code__


class SceneNet(NeuralNet):
    """skorch net trained on soft (mixup) targets, optionally distilled.

    ``teacher`` is a :class:`FusedTeacher` (or None); its logits are
    computed inside :meth:`get_loss` on the very batch the student sees,
    i.e. after crop, masks and mixup.

    Unlike skorch's NeuralNet, a KeyboardInterrupt (Ctrl-C) during training
    propagates out of ``fit``/``partial_fit`` instead of ending training as
    if it were complete (skorch's EarlyStopping still ends it normally), and
    a training loss that is not finite stops training with FloatingPointError
    naming the epoch and batch.
    """

    def __init__(self, *args, teacher=None, temperature=2.0, soft_weight=0.5, **kwargs):
        # set before NeuralNet.__init__: skorch only lets torch modules be
        # attached outside initialize_* while the net is being constructed
        self.teacher = teacher
        self.temperature = temperature
        self.soft_weight = soft_weight
        super().__init__(*args, **kwargs)

    def initialize_module(self):
        # channels-last convolutions are 2-3x faster on CPU for this network
        super().initialize_module()
        self.module_.to(memory_format=torch.channels_last)
        return self

    def fit_loop(self, X, y=None, *args, **kwargs):
        try:
            return super().fit_loop(X, y, *args, **kwargs)
        except KeyboardInterrupt as exc:
            if _raised_by_early_stopping(exc):
                raise  # partial_fit ends training normally
            raise _Interrupted() from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as exc:
            raise exc.__cause__ from None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = y_true.to(y_pred.device)
        if self.teacher is None or not training:
            loss = soft_cross_entropy(y_pred, y_true)
        else:
            with torch.no_grad():
                teacher_logits = self.teacher(X.to(y_pred.device))
            loss = distillation_loss(y_pred, y_true, teacher_logits, self.temperature, self.soft_weight)
        # checked before the backward pass and the optimizer step, so no NaN
        # reaches the weights; the sync costs nothing extra, skorch calls
        # loss.item() on every batch anyway
        if training and not torch.isfinite(loss.detach()):
            epoch, batch = len(self.history), len(self.history[-1]["batches"])
            raise FloatingPointError(
                f"training loss became non-finite ({loss.item()}) in epoch {epoch}, batch {batch}: "
                f"training diverged. Lower lr (it was {self.optimizer_.param_groups[0]['lr']:g}) "
                "or check the features for huge values"
            )
        return loss
