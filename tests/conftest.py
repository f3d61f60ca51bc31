"""Shared fixtures (torch's thread count is set in the root conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def tau22_root(tmp_path_factory):
    """A small generated TAU22 replica shared by the tests (written once)."""
    from skasc.datasets import make_tau22

    return make_tau22(tmp_path_factory.mktemp("tau22"), n_cities=2, n_locations=2, n_segments=1, random_state=0)
