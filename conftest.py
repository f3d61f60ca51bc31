"""Root pytest configuration, shared by the test suite and the doctests.

pytest collects every docstring example under ``skasc/`` (``--doctest-modules``
in pyproject.toml), as scikit-learn's own conftest does for its package.
Torch runs single-threaded: the networks in tests and examples are tiny, and
on a 2-core CI machine extra threads only add spin-waiting.
"""

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    # examples may use ``np`` without importing it, as scikit-learn's do
    doctest_namespace["np"] = np
