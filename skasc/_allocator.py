"""How glibc's allocator treats the large feature maps of training and predicting.

One mechanism, ``mallopt``, for both: a batch of the paper's network makes
feature maps of megabytes (predict) to tens of megabytes (training).  glibc
serves an allocation above its mmap threshold (initially 128 KB, growing
to at most 32 MB as large blocks are freed) with a fresh ``mmap`` and
returns it on free, so every page of every such map costs a page fault
when first written: a third of a training step's CPU time, half the
predict throughput on a virtual machine, in a fresh process.

* :func:`settle_thresholds` (predicting) sets, once, the thresholds glibc's
  own heuristic settles at in a long-running process (mmap above 32 MB,
  trim above 64 MB), so feature maps of a few MB come from the heap.
* :func:`reuse_freed_memory` (training, a context) also keeps the larger
  maps in the heap (``M_MMAP_MAX=0``, a high trim threshold) and, on
  leaving, settles the thresholds and returns the free memory
  (``malloc_trim``).

Both are no-ops off glibc (musl, macOS, Windows have other tunables) and
when ``SKASC_MALLOC_TUNING=0`` is set in the environment.
``benchmarks/bench_training.py`` prints the page faults per batch with and
without the tuning.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from contextlib import contextmanager

__all__ = ["settle_thresholds", "reuse_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
#: glibc's own ceiling of its dynamic mmap threshold, and twice it for trimming
_SETTLED_MMAP, _SETTLED_TRIM = 32 * 2**20, 64 * 2**20

_lock = threading.Lock()
_users = 0
_settled = False


def _glibc():
    if os.name != "posix" or os.environ.get("SKASC_MALLOC_TUNING", "1") == "0":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only: musl/macOS have other tunables
        return libc
    except (OSError, AttributeError):
        return None


def _settle(libc):
    libc.mallopt(_M_MMAP_MAX, 65536)
    libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP)
    libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM)


def settle_thresholds():
    """Set glibc's mmap and trim thresholds to their settled values, once
    per process (see the module's docstring)."""
    global _settled
    if _settled:
        return
    _settled = True
    libc = _glibc()
    if libc is not None:
        with _lock:
            if _users == 0:  # inside reuse_freed_memory the heap is kept anyway
                _settle(libc)


@contextmanager
def reuse_freed_memory(enabled=True):
    """Keep freed memory in the process while training on the CPU (glibc only).

    A training batch of 64 clips at 1x256x51 makes 60-MB activations, each a
    fresh ``mmap`` of ~15,000 pages by default.  Inside this context glibc
    serves them from its heap and keeps freed memory for the next step; on
    leaving, the thresholds are settled (:func:`settle_thresholds`) and the
    free memory is returned.  A no-op when ``enabled`` is false (e.g.
    training on a GPU) or off glibc.  Nested and concurrent uses in threads
    share one setting.
    """
    global _users
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    with _lock:
        _users += 1
        if _users == 1:
            libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # mallopt takes an int
            libc.mallopt(_M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _settle(libc)
                libc.malloc_trim(0)
