"""Exceptions that skasc raises besides Python's and scikit-learn's own."""

__all__ = ["TrainingCollapsedError"]


class TrainingCollapsedError(RuntimeError):
    """Training produced a network whose outputs no longer depend on its input.

    Raised by ``fit`` of the network classifiers when, for many training
    batches in a row, the network gave the same logits for every clip of the
    batch although the clips differ: every unit before one of its ReLUs has
    died (a large optimizer step pushed them negative for all inputs), no
    gradient reaches them any more, and the network would predict one class
    for everything.  It does not recover, so training stops there instead
    of running the remaining epochs.  The message names the epoch and batch
    and the learning rate: fit again with a lower ``lr``.

    Examples
    --------
    >>> from skasc.exceptions import TrainingCollapsedError
    >>> issubclass(TrainingCollapsedError, RuntimeError)
    True
    """
