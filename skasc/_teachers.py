"""Any fitted classifier as a teacher: what it is given, what it gives back.

A teacher is one of

* a skasc network classifier (``DwsCNNClassifier``, ``DistilledStudent``,
  an ``EnsembleTeacher`` of them): it reads the student's log-mel windows
  through its own fast inference path;
* a classifier that reads audio (``PretrainedClassifier``, or a Pipeline
  whose first step is ``Reassembler``, ``LogMel`` or
  ``DeviceImpulseResponse``): it is given the audio of the very windows the
  student sees, as waveforms at the student's sample rate, cut from the
  recordings that the student's :class:`~skasc.FeatureSet` links back to
  (:class:`~skasc.AudioLink`, set by ``LogMel``);
* any other fitted scikit-learn classifier: it reads the student's
  windows as rows of ``n_bands * frames`` numbers (the FeatureSet's array
  view);
* an ``EnsembleTeacher`` mixing these: each member gets its own input and
  the members' outputs are fused.

Its scores are logits: ``predict_logits`` where it has one, else the log of
``predict_proba``, else ``decision_function`` (two-class scores ``d`` as
logits ``(0, d)``).  Columns are matched to the student's classes **by
label**, never by position; a teacher with other labels is refused naming
them.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from ._featureset import FeatureSet
from ._ops import fuse_logits
from ._predict import logit_scores
from ._training import compute_teacher_outputs
from .preprocessing import DeviceImpulseResponse, LogMel, Reassembler
from .preprocessing._recording_audio import load_recording, read_units

__all__ = [
    "unwrap",
    "reads_audio",
    "is_network_teacher",
    "column_order",
    "teacher_scores",
    "teacher_input",
    "check_teacher_rate",
    "teacher_logits_at",
    "OnDemandTeacherOutputs",
]

_SCORE_METHODS = ("predict_logits", "predict_proba", "decision_function")


def unwrap(est):
    """The estimator inside a :class:`~sklearn.frozen.FrozenEstimator`."""
    return est.estimator if isinstance(est, FrozenEstimator) else est


def _first_step(pipe):
    for _, step in pipe.steps:
        if step is not None and not (isinstance(step, str) and step == "passthrough"):
            return step
    return None


def _members(est):
    """An ensemble's members (fitted ones if fitted), or None for a single model."""
    if getattr(type(est), "_input_kind", None) != "ensemble":
        return None
    return list(est.estimators_) if hasattr(est, "estimators_") else est._members()


def reads_audio(est):
    """Whether ``est`` reads audio rows (its own front end) rather than features."""
    est = unwrap(est)
    if isinstance(est, Pipeline):
        est = _first_step(est)
    if isinstance(est, (Reassembler, LogMel, DeviceImpulseResponse)):
        return True
    members = _members(est)
    if members is not None:
        return any(reads_audio(m) for m in members)
    return getattr(type(est), "_input_kind", None) == "audio"


def reads_audio_only(est):
    """Whether every model of ``est`` reads audio (an ensemble: all its members)."""
    members = _members(unwrap(est))
    if members is not None:
        return all(reads_audio_only(m) for m in members)
    return reads_audio(est)


def is_network_teacher(est):
    """A skasc network (or an ensemble of them only): read through the fused fast path."""
    est = unwrap(est)
    members = _members(est)
    if members is not None:
        return all(is_network_teacher(m) for m in members)
    return getattr(type(est), "_input_kind", None) == "features"


def check_scores_available(est, where="teacher"):
    """TypeError naming ``where`` if ``est`` gives no scores to learn from."""
    inner = unwrap(est)
    if not any(hasattr(inner, m) for m in _SCORE_METHODS):
        raise TypeError(
            f"{where} is a {type(inner).__name__}, which has neither predict_proba nor "
            "decision_function: a teacher must give scores for every class"
        )


def column_order(teacher_classes, classes, who="the teacher"):
    """Index of each of ``classes`` among ``teacher_classes`` (matched by label).

    Raises
    ------
    ValueError
        Naming the labels one side has and the other lacks.

    Examples
    --------
    >>> from skasc._teachers import column_order
    >>> column_order(["park", "bus"], ["bus", "park"]).tolist()
    [1, 0]
    """
    teacher_classes = list(np.asarray(teacher_classes).tolist())
    wanted = list(np.asarray(classes).tolist())
    where = {c: i for i, c in enumerate(teacher_classes)}
    missing = [c for c in wanted if c not in where]
    extra = [c for c in teacher_classes if c not in set(wanted)]
    if missing or extra or len(where) != len(teacher_classes):
        parts = ([f"it lacks {missing}"] if missing else []) + (
            [f"it has {extra}, which y does not"] if extra else [])
        raise ValueError(
            f"{who} was fitted on classes {teacher_classes}, the student's y has classes "
            f"{wanted}: {'; '.join(parts) or 'it repeats a label'}. Classes are matched by "
            "label: teacher and student need the same labels (in any order)"
        )
    return np.array([where[c] for c in wanted], dtype=np.int64)


#: A teacher's scores: its logits, else the log of its probabilities (soft
#: targets at their own scale), else its decision function.
TEACHER_SCORE_METHODS = ("predict_logits", "predict_proba", "decision_function")


def teacher_scores(est, X):
    """Logit-like scores of ``est`` on ``X``, in the order of ``est.classes_``."""
    return logit_scores(unwrap(est), X, order=TEACHER_SCORE_METHODS, floor=1e-12)


def teacher_input(est, X, where="the teacher"):
    """What ``est`` is given of the student's training input ``X``."""
    if not reads_audio(est) or not isinstance(X, FeatureSet):
        return X
    if X.audio_link is None:
        raise ValueError(
            f"{where} reads audio ({type(unwrap(est)).__name__}), but X holds features without "
            "their audio (plain arrays): put LogMel in the student's Pipeline, which keeps the "
            "way back to the audio, or pass a fitted teacher's outputs as teacher_outputs"
        )
    return X.audio_link.audio


def _sample_rates(est):
    """{parameter name: value} of every sample-rate parameter (``sr``) of ``est``."""
    inner = unwrap(est)
    if not hasattr(inner, "get_params"):
        return {}
    return {k: v for k, v in inner.get_params(deep=True).items()
            if (k == "sr" or k.endswith("__sr")) and isinstance(v, (int, np.integer))}


def check_teacher_rate(est, sr, where="the teacher"):
    """ValueError if an audio teacher's ``sr`` parameters differ from the audio's rate."""
    if not reads_audio(est):
        return
    members = _members(unwrap(est))
    if members is not None:
        for i, m in enumerate(members):
            check_teacher_rate(m, sr, f"{where} member estimators[{i}]")
        return
    wrong = {k: v for k, v in _sample_rates(est).items() if int(v) != int(sr)}
    if wrong:
        raise ValueError(
            f"{where} reads audio at {wrong} Hz, but the student's audio is at {sr} Hz: give "
            "them the same sample rate (the teacher is handed the student's waveforms)"
        )


# -- scores at window positions of the student's features ---------------------------


class _Recordings:
    """The recordings behind a FeatureSet's store frames, read once each."""

    def __init__(self, features, keep=64):
        link = features.audio_link
        self.features, self.link, self.keep = features, link, keep
        starts, first_row = np.unique(features.rec_start, return_index=True)
        self.starts, self.rows = starts, first_row
        self._signals = {}

    def locate(self, positions):
        """(row whose recording holds each position, its frame offset there)."""
        idx = np.searchsorted(self.starts, positions, side="right") - 1
        if np.any(idx < 0):
            raise ValueError("a window position lies before every recording")
        rows = self.rows[idx]
        return rows, positions - self.features.rec_start[rows]

    def signal(self, row):
        audio = self.link.audio
        r = int(audio.row_recording[row])
        if r not in self._signals:
            if len(self._signals) >= self.keep:
                self._signals.pop(next(iter(self._signals)))
            units = read_units(audio.recordings[r])
            signal, lengths, _ = load_recording(units, audio.sr, self.link.resample)
            self._signals[r] = (signal, np.asarray(lengths))
        return self._signals[r]

    def windows(self, positions):
        """Waveforms (n, samples) of the windows starting at store frames ``positions``."""
        rows, offsets = self.locate(np.asarray(positions, dtype=np.int64))
        hop = self.link.hop_length
        if not len(rows):
            return np.zeros((0, 0), np.float32)
        # one clip's duration: the first row's own piece
        n = int(self.signal(rows[0])[1][self.link.audio.row_piece[rows[0]]])
        out = np.zeros((len(rows), n), np.float32)
        for i, (row, off) in enumerate(zip(rows, offsets)):
            piece = self.signal(row)[0][int(off) * hop:int(off) * hop + n]
            out[i, :len(piece)] = piece  # a window reaching past the end is zero-padded
        return out


def teacher_logits_at(teacher, features, positions, classes, *, chunk=256, verbose=0,
                      recordings=None, mix=None):
    """The teacher's logits for the student's windows starting at ``positions``.

    Parameters
    ----------
    teacher : fitted classifier (see the module docs)
    features : FeatureSet
        The student's features (with their :class:`~skasc.AudioLink` for an
        audio teacher).
    positions : array of int
        Window starts (store frames of the original recordings).
    classes : array
        The student's classes: the columns of the result, matched by label.
    chunk : int, default=256
        Windows given to an audio or plain scikit-learn teacher at a time.
    mix : (float, array of int), optional
        ``(lam, perm)`` of mixup: window ``i`` is then heard as ``lam *
        w[i] + (1 - lam) * w[perm[i]]`` (a teacher that reads audio only).

    Returns
    -------
    torch.Tensor of shape (len(positions), len(classes)), float32
    """
    est = unwrap(teacher)
    positions = np.asarray(positions, dtype=np.int64)
    members = _members(est)
    if members is not None and not is_network_teacher(est):
        recordings = recordings or (_Recordings(features) if features.audio_link is not None else None)
        outs = [teacher_logits_at(m, features, positions, classes, chunk=chunk, verbose=verbose,
                                  recordings=recordings, mix=mix) for m in members]
        return fuse_logits(outs, getattr(est, "fusion", "logits"))
    order = column_order(est.classes_, classes)
    if mix is not None and not reads_audio(est):
        raise ValueError("only a teacher that reads audio can hear a mixup mixture")
    if is_network_teacher(est):
        logits = compute_teacher_outputs(est, features, positions, verbose=verbose)
        return logits[:, torch.as_tensor(order)].contiguous()
    spans = range(0, len(positions), chunk)
    if verbose:
        from tqdm.auto import tqdm

        spans = tqdm(spans, desc="teacher outputs", unit="chunk", total=-(-len(positions) // chunk))
    if reads_audio(est):
        teacher_input(est, features)  # the error for features without audio
        check_teacher_rate(est, features.audio_link.audio.sr)
        recordings = recordings or _Recordings(features)
        if mix is None:
            get = recordings.windows
        else:  # the mixtures, whole: perm indexes the batch, not a chunk
            lam, perm = mix
            waves = recordings.windows(positions)
            waves = lam * waves + (1.0 - lam) * waves[np.asarray(perm)]
            positions = np.arange(len(positions))
            get = waves.__getitem__
    else:
        width = features.width

        def get(pos):
            return FeatureSet(features.store, pos, pos + width, pos, width)
    out = [teacher_scores(est, get(positions[s:s + chunk])) for s in spans]
    logits = np.concatenate(out) if out else np.zeros((0, len(order)), np.float32)
    if logits.ndim != 2 or logits.shape[1] != len(order):
        raise ValueError(f"the teacher gave scores of shape {logits.shape} for "
                         f"{len(positions)} windows and {len(order)} classes")
    if not np.isfinite(logits).all():
        raise ValueError("the teacher's scores are not all finite; it cannot teach")
    return torch.from_numpy(np.ascontiguousarray(logits[:, order]))


class OnDemandTeacherOutputs:
    """Teacher logits computed for each batch's windows as they are drawn
    (``teacher_outputs="online"`` with a teacher that is not a skasc
    network): the same interface as :class:`~skasc._training.TeacherOutputs`.
    """

    def __init__(self, teacher, features, classes, device="cpu"):
        self.teacher, self.features, self.classes, self.device = teacher, features, classes, device
        self._recordings = _Recordings(features, keep=256) if features.audio_link is not None else None
        # a teacher of audio alone is given mixup's mixture itself (function matching)
        self.hears_mixture = reads_audio_only(teacher)

    def at(self, starts, mix=None):
        starts = np.asarray(starts, dtype=np.int64)
        logits = teacher_logits_at(self.teacher, self.features, starts, self.classes,
                                   recordings=self._recordings, mix=mix)
        return logits.to(self.device)
