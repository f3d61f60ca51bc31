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

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.history import History

from ._disk_store import DiskStore
from ._featureset import FeatureSet
from ._files import write_atomically
from ._hashing import Hasher, digest
from ._networks import held_networks
from ._ops import FusedNetworks
from .preprocessing._augmentation import draw_batch
from .preprocessing._mixup import MixupAugmentation


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
    device : str or torch.device, default="cpu"
    teacher_outputs : TeacherOutputs, default=None
        Cached teacher logits: the batch's target is then the pair
        ``(labels, teacher probabilities at the temperature)`` of the drawn
        crops, both mixed with the batch's mixup lambda and partners.
    temperature : float, default=1.0
        Distillation temperature (with ``teacher_outputs``).
    """

    def __init__(self, features, n_classes, mixup_alpha, seed, device="cpu",
                 teacher_outputs=None, temperature=1.0):
        self.features = features
        self.n_classes = n_classes
        self.mixup_alpha = mixup_alpha
        self.mixup = MixupAugmentation(float(mixup_alpha)) if mixup_alpha else None
        self.seed = int(seed)
        self.device = device
        self.teacher_outputs = teacher_outputs
        self.temperature = float(temperature)
        # on CPU this shares the FeatureSet's memory; on a GPU the features
        # are copied there once and every batch is drawn on the device.  A
        # store on disk stays there: each batch reads its windows
        self.store = None
        if not isinstance(features.store, DiskStore):
            with warnings.catch_warnings():
                # a read-only (e.g. joblib memory-mapped) store is fine: batches
                # are gathered into new tensors, the store is never written
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                self.store = torch.as_tensor(features.store).to(device)
        self.epoch = 0
        self._batch = 0

    def release(self):
        """Drop the training data (kept out of pickles of the fitted model)."""
        self.features = self.store = self.teacher_outputs = None

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
                                 device=self.device)
        rng = self.rng()
        batch = draw_batch(self.features, rows, rng, self.store, self.device)
        batch.targets = [F.one_hot(labels, self.n_classes).to(torch.float32)]
        mix = None
        if self.teacher_outputs is not None:
            # keyed on the clean recordings: a window of a convolved variant
            # gets the teacher's output of the same clean window
            clean = self.features.source_starts(rows, batch.starts)
            if self.mixup is not None and getattr(self.teacher_outputs, "hears_mixture", False):
                # function matching (Beyer et al., 2022): a teacher that reads
                # audio hears the mixup of the two windows' audio, and its
                # output for that mixture is the soft target; the input and
                # labels are mixed first, with the same lam and partners
                mix = self.mixup.sample(rng, len(rows))
                self.mixup.apply(batch, *mix)
                logits = self.teacher_outputs.at(clean, mix=mix)
            else:
                # probabilities, not logits, are mixed below: the soft target
                # of a mix is then the same convex combination as its labels,
                # and the KL term is mixup's loss for the teacher's targets
                logits = self.teacher_outputs.at(clean)
            batch.targets.append(torch.softmax(logits.to(batch.x.device) / self.temperature, 1))
        if self.mixup is not None and mix is None:
            self.mixup.draw(batch, rng)
        x = batch.x.unsqueeze(1)  # contiguous, which for one channel is also channels-last
        return (x, tuple(batch.targets)) if len(batch.targets) > 1 else (x, batch.targets[0])


class EpochSeed(Callback):
    """Tell the BatchDrawer and the shuffling generator which epoch runs."""

    def __init__(self, drawer, generator):
        self.drawer = drawer
        self.generator = generator

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)  # 1-based: the net appended this epoch already
        self.drawer.set_epoch(epoch)
        self.generator.manual_seed(int(np.random.default_rng([self.drawer.seed, epoch, 2**20]).integers(2**62)))


class CosineSchedule:
    """Cosine decay factor: 1 at epoch index 0, towards 0 after ``max_epochs``.

    A closed-form function of the (0-based) epoch index, for
    :class:`torch.optim.lr_scheduler.LambdaLR`.  skorch's
    :class:`~skorch.callbacks.LRScheduler` builds the scheduler with
    ``last_epoch = len(history) - 1`` at the start of every ``fit``, so a
    run resumed from a checkpoint continues on exactly the rates of an
    uninterrupted one (there is no scheduler state to restore).  A class,
    not a lambda, so a fitted model pickles.
    """

    def __init__(self, max_epochs):
        self.max_epochs = max_epochs

    def __call__(self, epoch):
        # a Python float: a numpy one would reach the optimizer's state and
        # make the checkpoint unreadable by torch.load(weights_only=True)
        return 0.5 * (1.0 + float(np.cos(np.pi * epoch / self.max_epochs)))


def cosine_lr(max_epochs):
    """skorch callback: the learning rate decays from ``lr`` to 0 over ``max_epochs``.

    The rate each epoch trained with is in the history as ``event_lr``.
    """
    return LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
                       lr_lambda=CosineSchedule(max_epochs))


def soft_cross_entropy(logits, target):
    """Cross-entropy against probability targets (mixed one-hot labels)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class SoftTargetCrossEntropy(torch.nn.Module):
    """:func:`soft_cross_entropy` as a module: the criterion skorch holds
    (``net.criterion_``) and :meth:`SceneNet.get_loss` calls on the mixed
    one-hot targets."""

    def forward(self, logits, target):
        return soft_cross_entropy(logits, target)


def distillation_loss(student_logits, target, teacher_log_probs, temperature, soft_weight,
                      hard=None):
    """(1-w) CE(student, labels) + w T^2 KL(teacher_T || student_T) (Hinton et al.).

    From the teacher's log-probabilities at the temperature ``T`` and, if
    given, the hard-label loss already computed.
    """
    if hard is None:
        hard = soft_cross_entropy(student_logits, target)
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        teacher_log_probs,
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    return (1.0 - soft_weight) * hard + soft_weight * soft


class FusedTeacher(FusedNetworks):
    """Frozen teacher networks, their logits fused by :func:`skasc._ops.fuse_logits`.

    ``fusion="logits"`` averages logits; ``"proba"`` averages probabilities
    and returns their log (logits of the averaged distribution).  No
    gradients, and never out of eval mode.  ``columns`` (an index array)
    reorders the fused logits' columns, e.g. to the student's class order.
    """

    def __init__(self, modules, fusion="logits", columns=None):
        super().__init__(modules, fusion)
        self.requires_grad_(False)
        self.eval()
        identity = columns is None or np.array_equal(columns, np.arange(len(columns)))
        self.columns = None if identity else torch.as_tensor(np.asarray(columns), dtype=torch.long)

    def forward(self, x):
        out = super().forward(x)
        return out if self.columns is None else out[:, self.columns.to(out.device)]

    def train(self, mode=True):  # a teacher never leaves eval mode
        return super().train(False)


# -- teacher outputs computed once ----------------------------------------------


def teacher_positions(features, step):
    """Window starts (store frames) at which cached teacher outputs are computed.

    Every row's own window, and every start an attached augmentation can
    move a window to, at most every ``step`` frames and including the last
    one of each recording (see :meth:`CropAugmentation.window_starts
    <skasc.CropAugmentation.window_starts>`), so that every drawable start
    lies between two cached ones.  ``step=1`` caches every start the crops
    can draw.

    Returns
    -------
    ndarray of int64, sorted, unique
    """
    parts = [features.row_start]
    for aug in features.augmentations:
        starts = aug.window_starts(features, step)
        if starts is not None:
            parts.append(starts)
    return np.unique(np.concatenate(parts).astype(np.int64))


class TeacherOutputs:
    """The fused teacher's logits at fixed window starts, looked up by start.

    Parameters
    ----------
    positions : ndarray of int64, sorted
        Window starts (store frames), from :func:`teacher_positions`.
    logits : torch.Tensor of shape (len(positions), n_classes)
    """

    def __init__(self, positions, logits):
        self.positions = np.asarray(positions, dtype=np.int64)
        self.logits = logits

    def to(self, device):
        """The same outputs with the logits on ``device``."""
        return TeacherOutputs(self.positions, self.logits.to(device))

    def at(self, starts):
        """Logits at window ``starts``: the cached ones where cached, else
        interpolated linearly between the two nearest cached starts."""
        starts = np.asarray(starts, dtype=np.int64)
        pos = self.positions
        left = np.searchsorted(pos, starts, side="right") - 1
        if np.any(left < 0):
            raise RuntimeError("a drawn crop starts before every cached teacher position")
        right = np.minimum(left + 1, len(pos) - 1)
        exact = pos[left] == starts
        gap = np.maximum(pos[right] - pos[left], 1)
        w = np.where(exact, 0.0, (starts - pos[left]) / gap).astype(np.float32)
        device = self.logits.device
        w = torch.as_tensor(w, device=device)[:, None]
        a = self.logits[torch.as_tensor(left, device=device)]
        if exact.all():
            return a
        return torch.lerp(a, self.logits[torch.as_tensor(right, device=device)], w)

    @staticmethod
    def _digest(positions, logits):
        return digest(np.asarray(positions, dtype=np.int64),
                      np.asarray(logits.detach().cpu().numpy(), dtype=np.float32))

    def save(self, path):
        """Write to ``path`` atomically (a crash leaves no half file), with a
        digest of the content that :meth:`load` checks."""
        logits = self.logits.cpu()
        state = {"positions": torch.as_tensor(self.positions), "logits": logits,
                 "digest": self._digest(self.positions, logits)}
        write_atomically(path, lambda tmp: torch.save(state, tmp))

    @classmethod
    def load(cls, path, positions, n_classes, device):
        """The outputs at ``path`` if they are for ``positions`` and unchanged
        since they were saved (their digest matches); else None."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            ok = (np.array_equal(state["positions"].numpy(), positions)
                  and tuple(state["logits"].shape) == (len(positions), n_classes)
                  and state.get("digest") == cls._digest(positions, state["logits"]))
        except Exception:  # unreadable: computed again and rewritten
            return None
        return cls(positions, state["logits"].to(device)) if ok else None


def read_teacher_logits(value, name="teacher_outputs"):
    """Precomputed teacher logits: (array, column labels or None).

    ``value`` is an array, a ``.npy`` file (an array) or a ``.npz`` file
    with ``logits`` and, optionally, ``classes`` (the label of each column).
    ValueError naming the file or argument for anything else.
    """
    labels = None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"{name}={str(value)!r}: no such file (expected 'cached', 'online', "
                             "an array or a .npy/.npz file of teacher logits)")
        try:
            if path.suffix == ".npy":
                arr = np.load(path, allow_pickle=False)
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    if "logits" not in z:
                        raise ValueError(f"it holds {sorted(z.files)}, not 'logits'")
                    arr = z["logits"]
                    labels = z["classes"] if "classes" in z else None
            else:
                raise ValueError("only .npy and .npz files are read")
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{name} file {str(path)!r} is not readable teacher logits: {exc}") from None
    else:
        arr = value
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (2, 3) or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty 2-D (n_clips, n_classes) or 3-D "
                         f"(n_clips, n_positions, n_classes) array of numbers; got "
                         f"shape {arr.shape}, dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds values that are not finite")
    return arr.astype(np.float32), labels


def precomputed_teacher_outputs(logits, features, step=1):
    """:class:`TeacherOutputs` from logits given per clip or per crop position.

    ``logits`` (columns already in the student's class order) is either

    * (n_rows, C): one row per training clip, the teacher's output for the
      clip's own window.  Crops between two clips of a recording get the
      interpolation of theirs; crops before the first or after the last
      clip present, the nearest clip's;
    * (n_rows, P, C): for each training clip, the teacher's outputs at the
      window starts ``0, step, 2 * step, ...`` (frames) of the clip's
      recording, the last one the last start a crop can draw, i.e.
      ``(P - 1) * step == recording frames - clip frames``.
    """
    n = len(features)
    if len(logits) != n:
        raise ValueError(f"teacher_outputs has {len(logits)} rows, X has {n} clips: one row per "
                         "training clip, in X's order")
    width = features.width
    if logits.ndim == 2:
        order = np.argsort(features.row_start, kind="stable")
        pos, first = np.unique(features.row_start[order], return_index=True)
        rows = order[first]
        table = {int(p): logits[r] for p, r in zip(pos, rows)}
        # hold the end values out to each recording's first and last drawable start
        for lo, hi in features.recording_spans():
            inside = pos[(pos >= lo) & (pos <= hi - width)]
            table.setdefault(int(lo), table[int(inside[0])])
            table.setdefault(int(hi - width), table[int(inside[-1])])
        keys = np.array(sorted(table), dtype=np.int64)
        return TeacherOutputs(keys, torch.from_numpy(np.stack([table[int(k)] for k in keys])))
    n_pos = logits.shape[1]
    span = features.rec_stop - features.rec_start - width
    bad = np.flatnonzero((n_pos - 1) * step != span)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"teacher_outputs has {n_pos} positions per clip at teacher_step={step}, but clip {i}'s "
            f"recording has {span[i] + 1} window starts: expected {span[i] // step + 1} positions "
            f"with {step} dividing {span[i]} (the last start a crop can draw)")
    _, first = np.unique(features.rec_start, return_index=True)
    keys = (features.rec_start[first][:, None] + step * np.arange(n_pos)).reshape(-1)
    return TeacherOutputs(keys.astype(np.int64),
                          torch.from_numpy(np.ascontiguousarray(logits[first].reshape(-1, logits.shape[2]))))


def compute_teacher_outputs(teacher, features, positions, *, chunk=4096, verbose=0):
    """The fitted ``teacher``'s raw scores at every window start in ``positions``.

    One pass through the teacher's own inference path
    (``teacher.predict_logits``: its device, its fast CPU kernels), in
    chunks of ``chunk`` windows with a progress bar when ``verbose``.
    """
    width = features.width
    positions = np.asarray(positions, dtype=np.int64)
    # each position as a one-window "recording": a view of the store, no copy
    windows = FeatureSet(features.store, positions, positions + width, positions, width)
    starts = range(0, len(positions), chunk)
    if verbose:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="teacher outputs", unit="chunk",
                      total=-(-len(positions) // chunk))
    # batches sized so one activation of the widest member is ~256 MB
    hidden = max(getattr(m, "hidden", 1) for m in held_networks(teacher).modules)
    batch = int(np.clip(2**28 // (4 * hidden * features.n_bands * width), 8, 1024))
    out = [np.asarray(teacher.predict_logits(windows[s:s + chunk], batch_size=batch),
                      dtype=np.float32) for s in starts]
    return torch.from_numpy(np.concatenate(out))


# -- checkpoints -------------------------------------------------------------


def training_fingerprint(features, y, description, extra_arrays=()):
    """Hex digest of everything a training run depends on.

    The feature frames every row can reach (its recording's span of the
    store), the row -> recording/window mapping, the augmentations attached
    to the FeatureSet, the encoded labels, ``description`` (parameters and
    classes, as text) and ``extra_arrays`` (e.g. a teacher's weights).
    BLAKE2b over the arrays' memory (the store is hashed in place, nothing
    is pickled): about 1 GB/s.
    """
    h = Hasher().update(description)
    disk = isinstance(features.store, DiskStore)
    if disk:  # its key stands for its content (the audio's digests and the parameters)
        h.update(f"disk store {features.store.key}:", features.recording_spans())
    else:
        for a, b in features.recording_spans():
            h.update(features.store[a:b])  # consecutive rows of a C-contiguous store
    for array in (features.rec_start, features.rec_stop, features.row_start, np.asarray(y)):
        h.update(np.asarray(array, dtype=np.int64))
    variants = getattr(features, "variants", None)
    if variants is not None and variants.size:
        # DeviceImpulseResponse's convolved copies: where they are and what they hold
        h.update(np.asarray(variants, dtype=np.int64))
        r, k = np.nonzero(variants > 0)
        off = variants[r, k]
        copies = np.stack([features.rec_start[r] + off, features.rec_stop[r] + off], axis=1)
        if not disk:
            for a, b in np.unique(copies.reshape(-1, 2), axis=0):
                h.update(features.store[a:b])
    h.update(repr((features.width, features.n_bands, features.augmentations)))
    for array in extra_arrays:
        h.update(array)
    return h.hexdigest()


def plain_module(module):
    """The module itself, or the one a ``torch.compile`` wrapper compiles."""
    return getattr(module, "_orig_mod", module)


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
                     module=plain_module(net.module_).state_dict(), optimizer=net.optimizer_.state_dict(),
                     history=json.dumps(net.history.to_list()))
        # fsynced before it replaces the last good epoch; a full disk names the file
        write_atomically(self.path, lambda tmp: torch.save(state, tmp))

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
        plain_module(net.module_).load_state_dict(state["module"])
        net.optimizer_.load_state_dict(state["optimizer"])
        net.history = History(json.loads(state["history"]))
    except Exception as exc:
        raise broken(f"does not match the network ({type(exc).__name__}: {exc})") from exc
    return bool(state["finished"])


# -- the net -------------------------------------------------------------------


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt past skorch's partial_fit, which swallows it."""


def _stopped_early(net):
    """Whether an EarlyStopping callback of ``net`` has just ended training.

    skorch's EarlyStopping ends training by raising KeyboardInterrupt from
    its ``on_epoch_end`` the moment its ``misses_`` reach ``patience``: that
    one is a normal end of training, not Ctrl-C (which, arriving any other
    time, finds ``misses_`` below ``patience``).
    """
    return any(isinstance(cb, EarlyStopping) and getattr(cb, "misses_", None) == cb.patience
               for _, cb in getattr(net, "callbacks_", ()))


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
            if _stopped_early(self):
                raise  # partial_fit ends training normally
            raise _Interrupted() from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as exc:
            raise exc.__cause__ from None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # y_true is the mixed one-hot target, or with cached teacher outputs
        # the pair (target, teacher probabilities at the temperature, mixed
        # alike) that BatchDrawer gathered for the drawn crops
        target, teacher_probs = y_true if isinstance(y_true, (tuple, list)) else (y_true, None)
        loss = self.criterion_(y_pred, target.to(y_pred.device))
        if training and (self.teacher is not None or teacher_probs is not None):
            if teacher_probs is None:  # online: the teacher sees the very batch
                with torch.no_grad():
                    logits = self.teacher(X.to(y_pred.device))
                teacher_log_probs = F.log_softmax(logits / self.temperature, dim=1)
            else:
                teacher_log_probs = teacher_probs.to(y_pred.device).clamp_min(1e-30).log()
            loss = distillation_loss(y_pred, None, teacher_log_probs, self.temperature,
                                      self.soft_weight, hard=loss)
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
