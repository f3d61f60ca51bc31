"""A skorch callback that interrupts training as Ctrl-C does, for the tests."""

from skorch.callbacks import Callback


class CtrlCAt(Callback):
    """Raise KeyboardInterrupt, as Ctrl-C does, at the start of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt
