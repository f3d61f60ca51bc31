"""Running a network over a batch in cache-sized chunks on worker threads.

Shared by the fast torch predictor (:mod:`skasc._inference`) and the ONNX
Runtime runner (:mod:`skasc._onnx`); see :mod:`skasc._inference` for why
small chunks and data-parallel workers are fast on a CPU.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = ["n_workers", "auto_chunk", "run_chunked", "check_batch"]

#: Bytes of one full-resolution feature map a chunk should stay under (L2).
CHUNK_BYTES = 2_000_000
MAX_CHUNK = 64


def n_workers(n_threads):
    """Worker threads for ``n_threads`` (None: the caller's torch thread count)."""
    return max(1, int(n_threads)) if n_threads else max(1, torch.get_num_threads())


def auto_chunk(act_bytes):
    """Clips per chunk so that one chunk's feature map stays under :data:`CHUNK_BYTES`."""
    return int(min(MAX_CHUNK, max(1, CHUNK_BYTES // max(1, int(act_bytes)))))


def run_chunked(fn, x, chunk_size, workers, torch_workers=True):
    """Concatenate ``fn(x[s:s + chunk_size])`` over the chunks, computed by workers.

    Each worker thread takes the next chunk until none is left.  With
    ``torch_workers`` a worker first sets its own intra-op thread count to 1
    (OpenMP/MKL thread counts are per thread); ``at::set_num_threads`` also
    stores a process-wide default for threads created later, so the
    caller's value is put back afterwards.
    """
    n = len(x)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    starts = list(range(0, n, chunk_size))
    workers = min(int(workers), len(starts))
    if workers <= 1 and (not torch_workers or torch.get_num_threads() == 1):
        return torch.cat([fn(x[s:s + chunk_size]) for s in starts]).numpy()
    it = iter(starts)
    lock = threading.Lock()
    results = {}

    def work():
        if torch_workers:
            torch.set_num_threads(1)
        while True:
            with lock:
                s = next(it, None)
            if s is None:
                return
            results[s] = fn(x[s:s + chunk_size])

    # every worker's set_num_threads(1) is followed by this restore, so
    # concurrent calls from several threads end with a caller's value too
    previous = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            futures = [pool.submit(work) for _ in range(max(1, workers))]
            for fut in futures:
                fut.result()
    finally:
        if torch_workers:
            torch.set_num_threads(previous)
    return torch.cat([results[s] for s in starts]).numpy()


def check_batch(x, input_shape):
    """``x`` as a contiguous float32 (N, C, F, T) array ((N, F, T) allowed when C == 1)."""
    x = np.asarray(x, dtype=np.float32)
    c, f, t = input_shape
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1:] != tuple(input_shape):
        raise ValueError(f"expected input of shape (N, {c}, {f}, {t}), got {x.shape}")
    return np.ascontiguousarray(x)
