"""Noticing a network that no longer depends on its input.

A network whose units before one of its ReLUs have all died gives the same
logits for every clip, gets no gradient there any more and never recovers,
while its loss history still looks like training.  :class:`CollapseGuard`
(a skorch callback, added to every network classifier's net) stops such a
run; :func:`raise_if_collapsed` applies the same rule to a whole history.
"""

from __future__ import annotations

import torch
from skorch.callbacks import Callback

from .exceptions import TrainingCollapsedError

__all__ = ["COLLAPSE_PATIENCE", "CollapseGuard", "raise_if_collapsed"]


#: Training batches in a row whose outputs did not depend on the input after
#: which :class:`CollapseGuard` stops training.
COLLAPSE_PATIENCE = 20


class CollapseGuard(Callback):
    """Stop training when the network's outputs no longer depend on its input.

    A network whose units before one of its ReLUs have all died (a large
    Adam step pushed them negative for every input) gives the same logits
    for every clip and gets no gradient there any more: it never recovers,
    yet its loss history looks like training.  Seen on the full-size TAU22
    replica: the paper's student at lr 0.01 gave one output for every clip
    from batch 2,097 of its first epoch on and, trained to the end of it,
    predicted one class for all 29,680 evaluation clips.

    For every training batch the history gets ``outputs_constant``: True when
    the batch's clips differ but all its logits are equal (to float32
    rounding), False when they differ, None when it cannot tell (fewer than
    two clips, or all clips equal).  After ``patience`` True in a row it
    raises :class:`~skasc.exceptions.TrainingCollapsedError`, so the
    remaining epochs are not spent and no finished model is recorded;
    :func:`raise_if_collapsed` applies the same rule to a history at the end
    of a fit (a run shorter than ``patience`` batches, a resumed checkpoint).
    """

    def __init__(self, patience=COLLAPSE_PATIENCE):
        self.patience = patience

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not training:
            return
        X = batch[0] if isinstance(batch, (tuple, list)) else batch
        flag = None
        if torch.is_tensor(X) and torch.is_tensor(y_pred) and len(y_pred) >= 2:
            y = y_pred.detach().float()
            spread = (y.max(0).values - y.min(0).values).max()
            if bool(spread <= 1e-6 * (1.0 + y.abs().max())):
                # only then compare the clips (a full pass over the batch)
                flag = True if bool((X.detach() != X.detach()[:1]).any()) else None
            else:
                flag = False
        net.history.record_batch("outputs_constant", flag)
        if flag:
            raise_if_collapsed(net, self.patience, minimum=self.patience)


def _flags_backwards(history):
    """``(flag, (epoch, batch))`` of the training batches that could tell, last first."""
    for epoch in reversed(history):
        for i in range(len(epoch["batches"]) - 1, -1, -1):
            flag = epoch["batches"][i].get("outputs_constant")
            if flag is not None:
                yield flag, (epoch["epoch"], i + 1)


def raise_if_collapsed(net, patience=COLLAPSE_PATIENCE, minimum=1):
    """Raise TrainingCollapsedError if ``net``'s last training batches all had
    input-independent outputs.

    "Last" means the last ``patience`` batches that could tell (see
    :class:`CollapseGuard`), or all of them if the run had fewer but at
    least ``minimum``.  Histories without the record (older checkpoints)
    pass.
    """
    run, first, whole = 0, None, True  # whole: no batch of the run varied
    for flag, where in _flags_backwards(net.history):
        if not flag:
            whole = False
            break
        run, first = run + 1, where
        if run == patience:
            break
    if run >= patience or (whole and run and run >= minimum):
        raise TrainingCollapsedError(
            f"training collapsed in epoch {first[0]}, batch {first[1]}: from there on the network "
            f"gave the same outputs for every clip of {run} training batches in a row (typically "
            f"the units before one of its ReLUs have all died), so it would predict one class for "
            f"everything, and it does not recover. Fit again with a lower lr (it was {net.lr:g})"
        )
