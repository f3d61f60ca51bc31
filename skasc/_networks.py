"""Which torch networks a fitted model holds: the one resolver that export,
complexity counting and the estimators use.

A model is a torch module, a fitted estimator with a ``module_`` (the
network) or with ``estimators_`` (an ensemble of such estimators, fused by
its ``fusion``), or a wrapper around one: a Pipeline (its last step), a
:class:`~sklearn.frozen.FrozenEstimator` or a fitted search
(``best_estimator_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

__all__ = ["HeldNetworks", "held_networks"]


@dataclass(frozen=True)
class HeldNetworks:
    """The networks of a fitted model.

    Attributes
    ----------
    name : str
        E.g. ``"DwsCNN"``, ``"DwsCNNClassifier (DwsCNN)"``, ``"EnsembleTeacher"``.
    module : torch.nn.Module or None
        The network; None for an ensemble.
    members : tuple of HeldNetworks
        An ensemble's members, in order (empty for a single network).
    input_shape : tuple of int or None
        (C, F, T) of one example, when known.
    fusion : {"logits", "proba"}
        How the members' outputs are fused.
    classes : ndarray or None
        The labels of the outputs, when known.
    """

    name: str
    module: nn.Module | None
    members: tuple
    input_shape: tuple | None
    fusion: str
    classes: np.ndarray | None

    @property
    def modules(self):
        """All networks, in order (the members' flattened)."""
        if self.module is not None:
            return [self.module]
        return [m for member in self.members for m in member.modules]


def _shape(value):
    return None if value is None else tuple(int(s) for s in value)


def held_networks(obj, where="estimator"):
    """The :class:`HeldNetworks` of a module, a fitted estimator or a wrapper of one.

    Parameters
    ----------
    obj : torch.nn.Module, estimator, Pipeline, FrozenEstimator or fitted search
    where : str, default="estimator"
        How error messages refer to ``obj``.

    Returns
    -------
    HeldNetworks

    Raises
    ------
    NotFittedError
        If the estimator (or a Pipeline's last step) is not fitted.
    TypeError
        If ``obj`` holds no torch network.

    Examples
    --------
    >>> from skasc._networks import held_networks
    >>> from skasc.nn import DwsCNN
    >>> held = held_networks(DwsCNN())
    >>> held.name, held.input_shape, len(held.modules)
    ('DwsCNN', (1, 256, 51), 1)
    """
    if isinstance(obj, nn.Module):
        return HeldNetworks(type(obj).__name__, obj, (), _shape(getattr(obj, "input_shape", None)),
                            "logits", None)
    if isinstance(obj, Pipeline):
        if not obj.steps:
            raise ValueError("the Pipeline has no steps")
        step_name, last = obj.steps[-1]
        if last is None or (isinstance(last, str) and last == "passthrough"):
            raise TypeError(
                f"The last step {step_name!r} of the Pipeline is {last!r}; a fitted skasc "
                "classifier (with a `module_` attribute) is needed as the final step.")
        try:
            check_is_fitted(last)
        except NotFittedError as exc:
            raise NotFittedError(
                f"The last step {step_name!r} ({type(last).__name__}) of the Pipeline is not "
                "fitted yet. Fit the pipeline first.") from exc
        if not hasattr(last, "module_") and not hasattr(last, "estimators_"):
            raise TypeError(
                f"The last step {step_name!r} ({type(last).__name__}) of the Pipeline is "
                "fitted but has no `module_` attribute (the fitted torch network): a skasc "
                "neural classifier is needed as the final step.")
        return held_networks(last, where=f"Pipeline step {step_name!r}")
    if isinstance(obj, FrozenEstimator):
        return held_networks(obj.estimator, where=where)
    if hasattr(obj, "best_estimator_"):
        return held_networks(obj.best_estimator_, where=where)
    name = type(obj).__name__
    classes = getattr(obj, "classes_", None)
    classes = None if classes is None else np.asarray(classes)
    if hasattr(obj, "module_"):
        module = obj.module_
        if not isinstance(module, nn.Module):
            raise TypeError(f"{name}.module_ is a {type(module).__name__}, not a torch.nn.Module.")
        shape = getattr(obj, "input_shape_", None)
        shape = getattr(module, "input_shape", None) if shape is None else shape
        return HeldNetworks(f"{name} ({type(module).__name__})", module, (), _shape(shape),
                            "logits", classes)
    if hasattr(obj, "estimators_"):
        members = tuple(held_networks(m, where=f"estimators_[{i}]")
                        for i, m in enumerate(obj.estimators_))
        if not members:
            raise ValueError(f"{name}.estimators_ is empty.")
        shape = getattr(obj, "input_shape_", None)
        if shape is None:
            shapes = {m.input_shape for m in members}
            shape = shapes.pop() if len(shapes) == 1 else None
        return HeldNetworks(name, None, members, _shape(shape), getattr(obj, "fusion", "logits"),
                            classes)
    check_is_fitted(obj)  # NotFittedError (or TypeError for non-estimators)
    raise TypeError(
        f"{where} {name} is fitted but exposes no torch network (`module_`) nor members "
        "(`estimators_`); expected a torch module, a fitted skasc classifier, an ensemble of "
        "them or a Pipeline ending in one.")
