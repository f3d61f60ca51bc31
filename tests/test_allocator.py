"""skasc._allocator: glibc keeps the large feature maps of training in its heap."""

import resource

import pytest
import torch

import skasc._allocator as allocator
import skasc._training as tr
from skasc import DwsCNNClassifier


@pytest.fixture
def toy(toy_logmels):
    return toy_logmels()


def _net(**kw):
    return DwsCNNClassifier(**{"hidden": 6, "max_epochs": 8, "batch_size": 16, "random_state": 0, **kw})


def test_reuse_freed_memory_stops_page_faults_of_large_batches():
    if allocator._glibc() is None:
        pytest.skip("glibc only")

    def faults_of_second_allocation():
        torch.ones(16 * 2**20).sum()  # 64 MB, freed
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(16 * 2**20).sum()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    assert faults_of_second_allocation() > 10_000  # 16,384 4-kB pages mapped afresh
    with allocator.reuse_freed_memory():
        # the fewest of three: this VM's kernel reclaims idle pages now and
        # then (kdamond), which faults them in again whatever glibc does;
        # memory glibc itself returned would fault every time
        assert min(faults_of_second_allocation() for _ in range(3)) < 1_000


def test_fit_trains_with_freed_memory_kept_on_cpu(monkeypatch, toy):
    if allocator._glibc() is None:
        pytest.skip("glibc only")
    seen = []
    original = tr.SceneNet.train_step

    def train_step(self, *args, **kwargs):
        seen.append(allocator._users)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tr.SceneNet, "train_step", train_step)
    X, y = toy
    _net(max_epochs=1).fit(X, y)
    assert seen and all(n == 1 for n in seen)
    assert allocator._users == 0


def test_settle_thresholds_keeps_mid_sized_maps_in_the_heap():
    if allocator._glibc() is None:
        pytest.skip("glibc only")
    allocator.settle_thresholds()

    def faults_of_second_allocation():
        torch.ones(2 * 2**20).sum()  # 8 MB, freed: under the settled 32-MB mmap threshold
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(2 * 2**20).sum()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    # the fewest of three, as above: the kernel's own reclaim is occasional
    assert min(faults_of_second_allocation() for _ in range(3)) < 500  # 2,048 pages if mapped afresh
