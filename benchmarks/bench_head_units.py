"""How many of fc1's units stay alive, epoch by epoch, at the paper's learning rate.

The paper's student puts two Linear layers at its end (180 -> 100 -> 10);
skasc puts a ReLU between them (the paper does not say).  With Adam at the
paper's 0.01 the ReLU's units die and revive as training goes, and if all
100 die the network gives one output for every clip, for good (skasc then
stops ``fit`` with :class:`~skasc.exceptions.TrainingCollapsedError`).  This
script trains the paper's student (``hidden=18``, 256 x 51 features,
crops, SpecAugment, mixup) on fold 1 of a replica with the learning rate
held constant (``--lr``; the cosine schedule would lower it) and prints
after every epoch: the mean training loss and its largest batch, how many
of fc1's units are active on at least one evaluation clip, and the
evaluation accuracy, for each ``--activation`` between the Linear layers
("relu": skasc's choice; "identity": no activation, nothing can die).

Run::

    python benchmarks/bench_head_units.py --scale 0.1 --epochs 12     # ~30 min on 2 cores

``--scale 0.1`` writes (once, into ``--work-dir``) a replica of a tenth of
the real development set's size: 13,960 training clips (218 batches an
epoch) and 2,968 evaluation clips.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from common import DEFAULT_WORK_DIR  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=0.1, help="replica size, a fraction of the real set")
    ap.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR / "bench-head-units"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--activation", nargs="+", choices=["relu", "identity"], default=["relu", "identity"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n-jobs", type=int, default=-1, help="LogMel workers")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from sklearn.pipeline import Pipeline
    from skorch.callbacks import Callback

    from skasc import DwsCNNClassifier, LogMel, RandomCrop, Reassembler, SpecAugment
    from skasc.datasets import load_tau22, make_tau22

    torch.set_num_threads(args.threads)
    root = os.path.join(args.work_dir, f"tau22-{args.scale:g}")
    make_tau22(root, scale=args.scale, n_jobs=args.n_jobs)
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    front = Pipeline([("reassemble", Reassembler()),
                      ("logmel", LogMel(memory=os.path.join(args.work_dir, "cache"), n_jobs=args.n_jobs)),
                      ("crop", RandomCrop()), ("specaug", SpecAugment())])
    X, X_test = front.fit_transform(train.X), front.transform(test.X)
    print(f"{len(train.y)} training clips, {len(test.y)} evaluation clips, lr {args.lr:g} held constant, "
          f"seed {args.seed}")

    class WithActivation(DwsCNNClassifier):
        # the activation between the Linear layers is a parameter of the
        # network (skasc.nn.DwsCNN), not of the classifier: pass it through
        activation = "relu"

        def _net_spec(self, features, n_classes):
            return {**super()._net_spec(features, n_classes),
                    "module__activation_between_linears": self.activation}

    class Report(Callback):
        def __init__(self, clf, name):
            self.clf, self.name = clf, name

        def on_epoch_end(self, net, **kwargs):
            losses = np.array([b["train_loss"] for b in net.history[-1]["batches"]])
            module = net.module_
            was_training = module.training
            module.eval()
            seen = []
            hook = module.fc1.register_forward_hook(lambda m, i, out: seen.append((out > 0).any(0)))
            self.clf.module_ = module  # the network as it is now, for predict_logits
            logits = self.clf.predict_logits(X_test)
            hook.remove()
            del self.clf.module_
            module.train(was_training)
            alive = int(torch.stack(seen).any(0).sum())
            accuracy = np.mean(self.clf.classes_[logits.argmax(1)] == test.y)
            print(f"{self.name:8s} epoch {len(net.history):3d}  loss {losses.mean():7.3f} (largest batch "
                  f"{losses.max():7.2f})  fc1 units alive {alive:3d}/{module.fc1.out_features}  "
                  f"evaluation accuracy {100 * accuracy:5.1f} %", flush=True)

    for activation in args.activation:
        clf = WithActivation(hidden=18, max_epochs=args.epochs, lr=args.lr, lr_schedule=None,
                             random_state=args.seed)
        clf.activation = activation
        clf.set_params(callbacks=[Report(clf, activation)])
        t = time.perf_counter()
        try:
            clf.fit(X, train.y)
        except Exception as exc:  # TrainingCollapsedError, FloatingPointError: part of the answer
            print(f"{activation:8s} stopped: {type(exc).__name__}: {exc}")
        print(f"{activation:8s} {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
