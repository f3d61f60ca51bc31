"""Model selection under the DCASE complexity budget."""

from __future__ import annotations

import numpy as np

from .complexity import BYTES_PER_PARAM, MAC_LIMIT, PARAM_MEMORY_LIMIT_BYTES, count_params_macs
from .nn import DwsCNN

__all__ = ["candidate_complexity", "BudgetRefit"]


def candidate_complexity(hidden, *, input_shape=(1, 256, 51), n_classes=10, linear_hidden=100):
    """(parameters, MACs) of the paper's network at one width, counted as
    :func:`~skasc.complexity.complexity_report` does.

    Parameters
    ----------
    hidden : int
        Channels of every convolution.
    input_shape : tuple of int, default=(1, 256, 51)
        (channels, mel bands, frames) of one input clip.
    n_classes : int, default=10
    linear_hidden : int, default=100
        Width of the first Linear layer.

    Returns
    -------
    params : int
    macs : int
        Multiply-accumulates of one forward pass of one clip.

    Examples
    --------
    >>> from skasc.model_selection import candidate_complexity
    >>> candidate_complexity(18)  # the paper's student (Table 1)
    (31260, 29591778)
    """
    module = DwsCNN(n_classes=n_classes, hidden=hidden, input_shape=input_shape,
                    linear_hidden=linear_hidden)
    return count_params_macs(module, input_shape)


class BudgetRefit:
    """``refit`` rule for GridSearchCV: best score among the candidates that fit.

    Pass an instance as ``GridSearchCV(..., refit=BudgetRefit())``: after
    the search, the best-scoring candidate whose network stays within the
    DCASE 2023 Task 1 limits (``max_macs`` multiply-accumulates per clip and
    ``max_param_bytes`` of parameter memory at ``dtype``) is refitted and
    becomes ``best_estimator_``.  The complexity of each candidate is that of
    the network it would deploy, at ``input_shape`` (the paper's 1x256x51 by
    default, also when the search itself runs on smaller features).

    Parameters
    ----------
    param : str, default="clf__hidden"
        The grid parameter holding the network width.
    input_shape : tuple, default=(1, 256, 51)
    n_classes : int, default=10
    max_macs : int, default=30_000_000
    max_param_bytes : int, default=128_000
    dtype : {"float32", "float16", "int8"}, default="float32"
        Storage of the deployed parameters.
    score_key : str, default="mean_test_score"
        Column of ``cv_results_`` to maximise (``"mean_test_<name>"`` for
        multi-metric scoring).

    Attributes
    ----------
    complexity_ : list of dict
        After the search: per candidate, its width, parameters, MACs and
        whether it fits.

    Examples
    --------
    >>> from skasc.model_selection import BudgetRefit
    >>> rule = BudgetRefit()
    >>> cv_results = {"params": [{"clf__hidden": h} for h in (12, 18, 24)],
    ...               "mean_test_score": [0.40, 0.45, 0.50]}
    >>> rule(cv_results)  # hidden=24 scores best but exceeds 30 M MACs
    1
    >>> [c["fits"] for c in rule.complexity_]
    [True, True, False]
    """

    def __init__(self, param="clf__hidden", *, input_shape=(1, 256, 51), n_classes=10,
                 max_macs=MAC_LIMIT, max_param_bytes=PARAM_MEMORY_LIMIT_BYTES, dtype="float32",
                 score_key="mean_test_score"):
        self.param = param
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.max_macs = max_macs
        self.max_param_bytes = max_param_bytes
        self.dtype = dtype
        self.score_key = score_key

    def __call__(self, cv_results):
        if self.dtype not in BYTES_PER_PARAM:
            raise ValueError(f"dtype must be one of {sorted(BYTES_PER_PARAM)}, got {self.dtype!r}")
        scores = np.asarray(cv_results[self.score_key], dtype=float)
        self.complexity_ = []
        for params in cv_results["params"]:
            if self.param not in params:
                raise ValueError(f"the grid has no parameter {self.param!r}; got {sorted(params)}")
            hidden = params[self.param]
            n_params, macs = candidate_complexity(hidden, input_shape=self.input_shape,
                                                  n_classes=self.n_classes)
            nbytes = n_params * BYTES_PER_PARAM[self.dtype]
            self.complexity_.append(dict(hidden=hidden, params=n_params, macs=macs, param_bytes=nbytes,
                                         fits=macs <= self.max_macs and nbytes <= self.max_param_bytes))
        fits = np.array([c["fits"] for c in self.complexity_])
        if not fits.any():
            raise ValueError(
                f"no candidate fits the budget ({self.max_macs:,} MACs, {self.max_param_bytes:,} bytes "
                f"at {self.dtype}); smallest MACs in the grid: {min(c['macs'] for c in self.complexity_):,}"
            )
        return int(np.flatnonzero(fits)[np.argmax(np.where(np.isnan(scores[fits]), -np.inf, scores[fits]))])
