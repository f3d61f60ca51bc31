"""Shared fixtures (torch's thread count is set in the root conftest.py)."""

import numpy as np
import pytest


def _toy_logmels(n=60, shape=(8, 12), seed=0, labels=("bus", "park", "tram"), shift=2.5,
                 band_width=2, band_stride=2):
    """``n`` toy log-mel clips of ``shape`` (bands, frames) and their labels.

    Gaussian noise in which class ``k`` lights up bands ``k * band_stride``
    to ``k * band_stride + band_width`` by ``shift`` (0: pure noise, no
    signal).  Labels cycle through ``labels``.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)[np.arange(n) % len(labels)]
    X = rng.normal(size=(n, *shape)).astype(np.float32)
    for k, lab in enumerate(labels):
        X[y == lab, band_stride * k: band_stride * k + band_width] += shift
    return X, y


@pytest.fixture(scope="session")
def toy_logmels():
    """The toy-data factory shared by the test files (see ``_toy_logmels``)."""
    return _toy_logmels


@pytest.fixture(scope="session")
def tau22_root(tmp_path_factory):
    """A small generated TAU22 replica shared by the tests (written once)."""
    from skasc.datasets import make_tau22

    return make_tau22(tmp_path_factory.mktemp("tau22"), n_cities=2, n_locations=2, n_segments=1, random_state=0)


@pytest.fixture
def trained_epochs(monkeypatch):
    """The epoch numbers every fit actually trains, in order."""
    seen = []
    import skasc._training as training

    original = training.EpochSeed.on_epoch_begin

    def record(self, net, **kwargs):
        seen.append(len(net.history))
        return original(self, net, **kwargs)

    monkeypatch.setattr(training.EpochSeed, "on_epoch_begin", record)
    return seen
