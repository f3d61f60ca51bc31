"""The paper's student, trained by knowledge distillation: :class:`DistilledStudent`."""

from __future__ import annotations

import copy
import os
import pickle
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import column_or_1d

from ._base import POSITIVE_INT, POSITIVE_REAL, check_targets, clone_keeping_fitted, fit_or_forget, is_fitted
from ._dwscnn_classifier import DwsCNNClassifier
from ._ensemble import EnsembleTeacher
from ._networks import held_networks
from ._teachers import (
    OnDemandTeacherOutputs,
    check_scores_available,
    check_teacher_rate,
    column_order,
    is_network_teacher,
    reads_audio,
    reads_audio_only,
    teacher_input,
    teacher_logits_at,
    unwrap,
)
from ._training import (
    FusedTeacher,
    TeacherOutputs,
    precomputed_teacher_outputs,
    read_teacher_logits,
    teacher_positions,
)
from .preprocessing import as_feature_set

__all__ = ["DistilledStudent"]


class DistilledStudent(DwsCNNClassifier):
    """The paper's student, trained by knowledge distillation from a teacher.

    Loss per batch (Hinton et al.):
    ``(1 - soft_weight) * CE(student, labels) + soft_weight * T^2 *
    KL(p_teacher || softmax(student / T))`` with the labels mixed by mixup.
    ``p_teacher`` is ``softmax(teacher / T)`` of the teacher's logits, which
    are either computed once before training (``teacher_outputs="cached"``)
    or on the very batch the student sees (``"online"``).

    **Cached** (the default): the fused teacher runs once, on its own device
    and inference path, over every window position the crops can draw (or a
    grid of them, ``teacher_step``); each batch gathers the logits of the
    crops it drew (interpolated linearly between grid positions), and mixup
    mixes the teacher's probabilities with the batch's lambda, like the
    labels.  The teacher then sees neither the SpecAugment masks,
    Frequency-MixStyle or device impulse responses nor the mixed input (its
    targets describe the clean crops).  With
    ``checkpoint_dir`` the outputs are stored beside the checkpoint, under
    the fingerprint of the data, parameters and teacher, and a resumed fit
    reads them.  By MAC count, an online epoch with four hidden=256 teachers
    costs about 130 plain student epochs; cached, the whole teacher cost is
    one pass over 451 windows per 10-s recording (46 with
    ``teacher_step=10``), as much as 45 (4.6) online epochs.  **Online**:
    the teacher runs on every batch, after crop, SpecAugment and mixup;
    cheaper than cached only for runs shorter than that.

    A teacher that is already fitted (bare or wrapped in
    :class:`sklearn.frozen.FrozenEstimator`) is used frozen and never
    refitted; :func:`sklearn.base.clone` keeps it, so a GridSearchCV over
    the student's ``hidden`` trains the teacher once, not once per
    candidate.  An unfitted teacher is cloned and fitted on the same data
    first (then available as ``teacher_``).

    **Any classifier can teach** (see ``skasc._teachers``): a skasc network
    reads the student's log-mel windows; a classifier that reads audio --
    :class:`~skasc.PretrainedClassifier`, or a Pipeline starting with
    :class:`~skasc.Reassembler` or :class:`~skasc.LogMel` -- is given the
    audio of the very windows the student sees (cut from the recordings
    that :class:`~skasc.LogMel` linked the features to, as waveforms at the
    student's sample rate; an unfitted one is fitted on the student's
    audio rows); any other scikit-learn classifier reads the windows'
    features as flat rows.  Its scores are ``predict_logits``, else the log
    of ``predict_proba``, else ``decision_function``.  The teacher's
    columns are matched to the student's classes by label; a teacher with
    other labels is refused naming them.  A teacher's sample-rate
    parameters (``sr``) must equal the student's audio rate.

    Parameters
    ----------
    teacher : classifier, default=None
        Any scikit-learn classifier with ``predict_proba`` or
        ``decision_function`` (fitted or not, bare or in a
        FrozenEstimator); one without is refused with TypeError before
        anything trains.  None: ``EnsembleTeacher()`` (the paper's four
        hidden=256 networks), unless ``teacher_outputs`` holds precomputed
        outputs.
    temperature : float, default=2.0
    soft_weight : float, default=0.5
        Weight of the soft (teacher) loss.
    teacher_outputs : {"cached", "online"}, array or path, default="cached"
        Compute the teacher's outputs once before training, or run the
        teacher on every batch (see above; a teacher that is not a skasc
        network runs on each batch's drawn windows before masks; one that
        reads audio hears mixup's mixture of the two windows' audio and its
        output for it is the target -- function matching, Beyer et al.,
        2022 -- while one that reads features has its probabilities mixed
        like the labels).  Or precomputed logits,
        the way published ensembles ship theirs (``teacher`` must then be
        None): an array or ``.npy`` file of shape (n_clips, n_classes) --
        one row per training clip, for its own window -- or (n_clips,
        n_positions, n_classes) -- per clip, the windows starting at frames
        ``0, teacher_step, 2 * teacher_step, ...`` of its recording up to
        the last start a crop can draw; columns in the order of the sorted
        labels of ``y``, or a ``.npz`` file with ``logits`` and ``classes``
        (the label of each column, matched by label).
    teacher_step : int, default=1
        With ``teacher_outputs="cached"``: grid, in frames, of the crop
        positions the teacher's outputs are computed at.  1: every position a
        crop can draw, so every batch gets the teacher's exact outputs (451
        windows per 10-s recording, as much teacher work as about 45 online
        epochs: worth it for long runs such as the paper's 600 epochs); 10:
        every 200 ms at the paper's hop, a tenth of the pass, with the
        outputs between grid positions interpolated (for short runs).
    max_epochs : int, default=600
        The paper trains the student 600 epochs.
    hidden, linear_hidden, batch_size, lr, lr_schedule, weight_decay, mixup_alpha,
    standardize, device, compile, callbacks, checkpoint_dir, random_state, verbose
        As in :class:`DwsCNNClassifier`.

    Attributes
    ----------
    teacher_ : classifier
        The fitted teacher used.
    classes_, n_features_in_, input_shape_, module_, net_

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier, DistilledStudent
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8, 12)).astype("float32")
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, :4] += 2.0
    >>> teacher = DwsCNNClassifier(hidden=8, max_epochs=3, random_state=0).fit(X, y)
    >>> student = DistilledStudent(teacher, hidden=4, max_epochs=3, random_state=0).fit(X, y)
    >>> student.teacher_ is teacher
    True
    """

    _parameter_constraints: dict = {
        **DwsCNNClassifier._parameter_constraints,
        "teacher": [HasMethods(["fit", "predict"]), None],
        "temperature": POSITIVE_REAL,
        "soft_weight": [Interval(Real, 0, 1, closed="both")],
        "teacher_outputs": [StrOptions({"cached", "online"}), np.ndarray, str, os.PathLike],
        "teacher_step": POSITIVE_INT,
    }

    def __init__(
        self, teacher=None, *, hidden=18, temperature=2.0, soft_weight=0.5,
        teacher_outputs="cached", teacher_step=1,
        linear_hidden=100, max_epochs=600, batch_size=64, lr=0.01, lr_schedule="cosine",
        weight_decay=0.0, mixup_alpha=0.5, standardize=True, device="cpu", compile="auto",
        callbacks=None, warm_start=False, checkpoint_dir=None, random_state=None, verbose=0,
    ):
        super().__init__(
            hidden=hidden, linear_hidden=linear_hidden, max_epochs=max_epochs,
            batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay,
            mixup_alpha=mixup_alpha, standardize=standardize, device=device, compile=compile,
            callbacks=callbacks, warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            random_state=random_state, verbose=verbose,
        )
        self.teacher = teacher
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.teacher_outputs = teacher_outputs
        self.teacher_step = teacher_step

    def __sklearn_clone__(self):
        # A fitted teacher is frozen: kept instead of handing GridSearchCV an
        # unfitted copy to retrain per candidate.
        return clone_keeping_fitted(self, "teacher")

    # the teacher is an estimator: it validates its own parameters
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the teacher if needed, then distil it into the student.

        Raises KeyboardInterrupt on Ctrl-C and FloatingPointError if the
        loss becomes non-finite, leaving the student unfitted.

        Parameters
        ----------
        X : FeatureSet or array of shape (n_clips, bands, frames)
            Training clips (a FeatureSet carries the crops and masks to draw;
            a 2-D array ``(n_clips, frames)`` is one band per clip).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params_beyond_table()
        return fit_or_forget(self, X, y)

    def _check_params_beyond_table(self):
        super()._check_params_beyond_table()
        value = self.teacher_outputs
        if isinstance(value, (str, os.PathLike)) and value not in ("cached", "online") \
                and Path(value).suffix not in (".npy", ".npz"):
            raise InvalidParameterError(
                f"The 'teacher_outputs' parameter of {type(self).__name__} must be 'cached', "
                f"'online', an array or the path of a .npy or .npz file of teacher logits. "
                f"Got {value!r} instead.")

    def _precomputed(self):
        """True when ``teacher_outputs`` holds the teacher's logits themselves."""
        return not (isinstance(self.teacher_outputs, str)
                    and self.teacher_outputs in ("cached", "online"))

    def _fit(self, X, y):
        features = as_feature_set(X)
        fine_tuning = self.warm_start and hasattr(self, "module_")
        if y is not None:
            y_arr = column_or_1d(y)
            classes = np.asarray(self.classes_) if fine_tuning else np.unique(y_arr)
        if self._precomputed():
            if self.teacher is not None:
                raise ValueError("teacher_outputs holds precomputed teacher logits and a teacher "
                                 "is given too: pass one of them (teacher=None)")
            logits, labels = read_teacher_logits(self.teacher_outputs)
            if y is not None:
                if labels is not None:
                    logits = logits[..., column_order(labels, classes, "teacher_outputs")]
                elif logits.shape[-1] != len(classes):
                    raise ValueError(
                        f"teacher_outputs has {logits.shape[-1]} columns, y has {len(classes)} "
                        f"classes; columns are taken in the order of the sorted labels "
                        f"{classes.tolist()} (or pass a .npz with 'classes' naming them)")
            self._teacher_logits = logits
            self.teacher_ = None
            try:
                return super()._fit(X, y)
            finally:  # only training reads them: not kept in the fitted model's pickle
                del self._teacher_logits
        teacher = EnsembleTeacher() if self.teacher is None else self.teacher
        check_scores_available(teacher, "teacher")
        teacher = unwrap(teacher)
        if reads_audio(teacher):  # before any training: the audio is there, at the right rate
            audio = teacher_input(teacher, features)
            check_teacher_rate(teacher, audio.sr)
        if is_fitted(teacher):
            self.teacher_ = teacher
        else:
            check_targets(self, features, y)
            self.teacher_ = clone(teacher).fit(teacher_input(teacher, features), y)
        if y is not None:
            self._teacher_order = column_order(self.teacher_.classes_, classes)
        if is_network_teacher(self.teacher_) and features.feature_shape != self.teacher_.input_shape_:
            raise ValueError(
                f"the teacher was fitted on inputs of shape {self.teacher_.input_shape_}, "
                f"X has {features.feature_shape}; teacher and student need the same features"
            )
        return super()._fit(X, y)

    def _fingerprint_arrays(self):
        # a student's checkpoint is bound to what it learns from
        if self.teacher_ is None:
            return [self._teacher_logits.reshape(-1).view(np.uint8)]
        arrays = self._teacher_arrays()
        if self.teacher_outputs == "online" and reads_audio_only(self.teacher_):
            # such a teacher now hears the mixup mixtures (before: the clean
            # windows): a checkpoint written for the earlier targets is not resumed
            arrays.append(np.frombuffer(b"online audio teacher: hears mixup mixtures", np.uint8))
        return arrays

    def _teacher_arrays(self):
        try:  # the weights of the teacher's torch networks
            modules = held_networks(self.teacher_).modules
        except (TypeError, ValueError):  # no torch network (e.g. scikit-learn members)
            return [np.frombuffer(pickle.dumps(self.teacher_), np.uint8)]
        about = f"{type(self.teacher_).__name__}:{getattr(self.teacher_, 'fusion', 'logits')}"
        arrays = [np.frombuffer(about.encode(), np.uint8)]
        for module in modules:
            arrays += [t.detach().cpu().reshape(-1).view(torch.uint8).numpy()
                       for t in module.state_dict().values()]
        return arrays

    def _distillation(self):
        teacher = None
        if not self._precomputed() and self.teacher_outputs == "online" \
                and is_network_teacher(self.teacher_):
            # copies: moving them to the student's device leaves the teacher as it is
            modules = [copy.deepcopy(m).to(self.device) for m in held_networks(self.teacher_).modules]
            teacher = FusedTeacher(modules, getattr(self.teacher_, "fusion", "logits"),
                                   columns=self._teacher_order)
        return dict(teacher=teacher, temperature=float(self.temperature),
                    soft_weight=float(self.soft_weight))

    def _before_training(self, features, checkpoint):
        drawer = self.net_.iterator_train__collate_fn
        drawer.temperature = float(self.temperature)
        if self._precomputed():
            drawer.teacher_outputs = precomputed_teacher_outputs(
                self._teacher_logits, features, self.teacher_step).to(self.device)
            return
        if self.teacher_outputs == "online":  # a string here: precomputed returned above
            if not is_network_teacher(self.teacher_):  # its outputs for each batch's windows
                drawer.teacher_outputs = OnDemandTeacherOutputs(
                    self.teacher_, features, self.classes_, self.device)
            return
        positions = teacher_positions(features, self.teacher_step)
        # beside the checkpoint, whose folder is named by the fingerprint of
        # the data, the parameters and the teacher's weights: never stale
        path = None if checkpoint is None else checkpoint[0].with_name("teacher_outputs.pt")
        cached = None
        if path is not None and path.exists():
            cached = TeacherOutputs.load(path, positions, len(self.classes_), self.device)
            if cached is None and self.verbose:
                print(f"[skasc] {path} is not these teacher outputs (changed or unreadable): "
                      "computing them again", flush=True)
        if cached is None:
            if self.verbose:
                print(f"[skasc] teacher outputs at {len(positions):,} window positions "
                      f"(once, on the teacher's device)", flush=True)
            logits = teacher_logits_at(self.teacher_, features, positions, self.classes_,
                                       verbose=self.verbose)
            cached = TeacherOutputs(positions, logits.to(self.device))
            if path is not None:
                cached.save(path)
        drawer.teacher_outputs = cached
