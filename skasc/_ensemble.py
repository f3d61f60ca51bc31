"""The paper's fused teacher: :class:`EnsembleTeacher`, an average of several classifiers."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import (
    check_features_for,
    check_targets,
    check_training_labels,
    fast_batched_logits,
    batched_logits,
    fit_or_forget,
    is_fitted,
)
from ._dwscnn_classifier import DwsCNNClassifier
from ._featureset import AudioSet, FeatureSet
from ._inference import cached_fast_predictor
from ._networks import held_networks
from ._ops import fuse_logits
from ._predict import SceneClassifierMixin, n_rows
from ._teachers import (
    check_scores_available,
    check_teacher_rate,
    column_order,
    is_network_teacher,
    reads_audio,
    teacher_input,
    teacher_scores,
    unwrap,
)
from ._training import FusedTeacher
from ._validation import check_batch_size
from .preprocessing import as_feature_set

__all__ = ["EnsembleTeacher"]


def _fit_member(estimator, X, y, n_threads):
    if n_threads:
        torch.set_num_threads(n_threads)
    return estimator.fit(X, y)


class EnsembleTeacher(SceneClassifierMixin, ClassifierMixin, BaseEstimator):
    """Average of several classifiers, the paper's fused teacher.

    Members are usually skasc networks (the paper's four DwsCNNs), whose
    logits are fused in one fast pass; any scikit-learn classifier with
    ``predict_proba`` or ``decision_function`` may join them, e.g. a
    :class:`~skasc.PretrainedClassifier` or a Pipeline with its own front
    end.  Each member reads what it needs of ``X`` (a member that reads
    audio gets the audio behind a :class:`~skasc.FeatureSet`, see
    :class:`~skasc.AudioLink`), and its columns are matched to the
    ensemble's classes **by label**: members whose labels differ from each
    other or from ``y`` are refused naming the labels.

    Parameters
    ----------
    estimators : list of classifiers, default=None
        Members, cloned and fitted on the same data (fitted members wrapped
        in :class:`sklearn.frozen.FrozenEstimator` are used as they are).
        A member that has neither ``predict_proba`` nor
        ``decision_function`` is refused with TypeError before any member
        trains.  None gives the paper's teacher: four
        ``DwsCNNClassifier(hidden=256)`` seeded 0-3.
    fusion : {"logits", "proba"}, default="logits"
        Average the members' logits (the fused logits feed distillation
        directly) or their probabilities (better when the members are of
        different kinds, whose logits have different scales).  Members
        without logits contribute the log of their probabilities.
    n_jobs : int, default=None
        Members trained in parallel (joblib processes) on CPU; members on
        a CUDA device are trained one after the other.  Not 0; -1: all
        CPUs.
    verbose : int, default=0

    Attributes
    ----------
    estimators_ : list
        The fitted members.
    classes_ : ndarray
        The labels of ``y``, sorted; every member's columns are matched to them.
    n_features_in_, input_shape_
        Those of the first member that reads features and has them (absent
        if none does).

    Examples
    --------
    >>> import numpy as np
    >>> from skasc import DwsCNNClassifier, EnsembleTeacher
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 8, 12)).astype("float32")
    >>> y = np.repeat([0, 1], 20)
    >>> X[y == 1, :4] += 2.0
    >>> members = [DwsCNNClassifier(hidden=4, max_epochs=3, random_state=s) for s in range(2)]
    >>> teacher = EnsembleTeacher(members).fit(X, y)
    >>> teacher.predict_logits(X).shape
    (40, 2)
    """

    _input_kind = "ensemble"

    _parameter_constraints: dict = {
        "estimators": [list, tuple, None],
        "fusion": [StrOptions({"logits", "proba"})],
        "n_jobs": [Interval(Integral, 1, None, closed="left"),
                   Interval(Integral, None, -1, closed="right"), None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimators=None, *, fusion="logits", n_jobs=None, verbose=0):
        self.estimators = estimators
        self.fusion = fusion
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _members(self):
        if self.estimators is None:
            return [DwsCNNClassifier(hidden=256, random_state=s) for s in range(4)]
        members = list(self.estimators)
        if not members:
            raise ValueError("estimators must hold at least one classifier")
        for i, member in enumerate(members):
            check_scores_available(member, f"estimators[{i}]")
        return members

    @_fit_context(prefer_skip_nested_validation=False)  # members validate their own
    def fit(self, X, y):
        """Fit every member on ``X``, ``y``; KeyboardInterrupt leaves it unfitted.

        Parameters
        ----------
        X : FeatureSet, array of shape (n_clips, bands, frames), or audio rows
            Training clips (a FeatureSet carries the crops and masks to
            draw, and the way back to its audio for members that read audio).
        y : array-like of shape (n_clips,)
            Scene labels.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return fit_or_forget(self, X, y)

    def _fit(self, X, y):
        members = [clone(m) for m in self._members()]
        for member in members:  # every member's parameters, before any member trains
            inner = unwrap(member)
            if hasattr(inner, "_validate_params") and not is_fitted(inner):
                inner._validate_params()
            getattr(inner, "_check_params_beyond_table", lambda: None)()
        if all(reads_audio(m) for m in members) and not isinstance(X, FeatureSet):
            y = check_training_labels(self, y, n_rows(X))
            features = X
        else:
            features, y = check_targets(self, X, y)
        inputs = [teacher_input(m, features, f"estimators[{i}]") for i, m in enumerate(members)]
        for i, (m, x) in enumerate(zip(members, inputs)):
            if isinstance(x, AudioSet):
                check_teacher_rate(m, x.sr, f"estimators[{i}]")
        on_gpu = any(str(getattr(unwrap(m), "device", "cpu")).startswith("cuda") for m in members)
        n_jobs = 1 if on_gpu else self.n_jobs
        workers = min(effective_n_jobs(n_jobs), len(members))
        threads = max(1, torch.get_num_threads() // workers) if workers > 1 else None
        self.estimators_ = Parallel(n_jobs=workers, verbose=self.verbose)(
            delayed(_fit_member)(m, x, y, threads) for m, x in zip(members, inputs)
        )
        self.classes_ = np.unique(y)
        self._orders = [column_order(unwrap(m).classes_, self.classes_, f"estimators[{i}]")
                        for i, m in enumerate(self.estimators_)]
        readers = [unwrap(m) for m in self.estimators_ if not reads_audio(m)]
        for name in ("n_features_in_", "input_shape_"):
            self.__dict__.pop(name, None)
            # the first member that has it: a scikit-learn member knows no input_shape_
            values = [getattr(r, name) for r in readers if hasattr(r, name)]
            if values:
                setattr(self, name, values[0])
        return self

    def _fused_networks(self):
        """True when every member is a skasc network with the ensemble's column
        order: the fused fast path applies."""
        return is_network_teacher(self) and all(
            np.array_equal(o, np.arange(len(self.classes_))) for o in self._orders)

    def _member_input(self, X):
        """What the members are given of ``X`` at predict time: what ``fit`` gave them.

        Audio rows stay audio rows when every member reads audio; otherwise
        ``X`` is features (a 2-D array: flattened clips, see
        :class:`~skasc._predict.SceneClassifierMixin`) and each member gets
        its part of them (:func:`~skasc._teachers.teacher_input`).
        """
        if all(reads_audio(m) for m in self.estimators_) and not isinstance(X, FeatureSet):
            return X
        if hasattr(self, "input_shape_"):
            return check_features_for(self, X)
        return as_feature_set(X)

    def predict_logits(self, X, batch_size=512):
        """Fused logits of each clip, one column per class (see
        :meth:`decision_function` for scikit-learn's shape).

        Parameters
        ----------
        X : FeatureSet, array of shape (n_clips, bands, frames) or (n_clips, bands * frames)
            The clips, as ``fit`` took them (audio rows when every member
            reads audio); a 2-D array of features holds each clip's
            features flattened, as the FeatureSet's array view.
        batch_size : int, default=512
            Clips computed at a time.

        Returns
        -------
        ndarray of shape (n_clips, n_classes), float32
            The members' averaged logits (``fusion="logits"``) or the log
            of their averaged probabilities (``fusion="proba"``), columns in
            the order of ``classes_``.
        """
        check_is_fitted(self, "estimators_")
        batch_size = check_batch_size(batch_size)
        X = self._member_input(X)
        if not self._fused_networks():
            outs = [torch.from_numpy(teacher_scores(m, teacher_input(m, X, f"estimators[{i}]"))[:, o])
                    for i, (m, o) in enumerate(zip(self.estimators_, self._orders))]
            return fuse_logits(outs, self.fusion).numpy()
        device = getattr(self.estimators_[0], "device", "cpu")
        fast = cached_fast_predictor(self, held_networks(self).modules, self.input_shape_,
                                     self.fusion, device=device)
        if fast is not None:  # CPU, no forward hooks
            return fast_batched_logits(fast, X, batch_size)
        fused = FusedTeacher(held_networks(self).modules, self.fusion)
        return batched_logits(fused, X, device, batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
