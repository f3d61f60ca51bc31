"""Fast CPU inference for fitted :class:`~skasc.nn.DwsCNN` networks.

:class:`FastPredictor` computes the same logits as the eager network (to
float32 rounding, ~1e-7) several times faster on a CPU; the measured figures
and the command that gives them are in the README's Performance section
(``benchmarks/bench_inference.py``).  What makes it fast:

1. **Small chunks.**  One clip's full-resolution feature map is
   18 x 256 x 51 float32 = 940 KB.  A batch of 256 clips makes every layer
   write 240 MB: out of every cache, and -- allocations that large being
   fresh ``mmap`` s -- about a thousand page faults per clip and layer, which
   cost more than the arithmetic on a virtual machine.  The full-resolution
   layers (input convolution, first block, first pooling) therefore run on
   ``chunk_size`` clips at a time (2 at the paper's size: ~2 MB maps, in
   L2), the low-resolution rest on up to 16 clips at once, whatever batch
   the predictor is given.  The first use also settles glibc's mmap
   threshold at 32 MB (:func:`skasc._allocator.settle_thresholds`), which
   removes the remaining page faults of few-MB maps in a fresh process
   (2.5x on its own).
2. **Data-parallel workers.**  ``n_threads`` Python threads each run whole
   work units with one intra-op thread (PyTorch and ONNX Runtime release
   the GIL), instead of splitting every layer between threads: no barrier
   per layer, so the throughput degrades gracefully when the cores are
   shared with other jobs.
3. **Folding.**  The network's layer list (:meth:`~skasc.nn.DwsCNN.layers`)
   is turned into plain operators by :mod:`skasc._folded`: a BatchNorm
   folded into the convolution before it, or one ``addcmul`` where it
   cannot be; max-pooling as strided ``amax`` reductions.
4. **Fused oneDNN kernels** (when this PyTorch has them): pre-packed
   weights, ReLU and the residual addition fused into the convolutions
   (see :mod:`skasc._folded`).  They are private PyTorch operators: they
   are checked against the plain operators when the predictor is built and
   not used if they are missing or disagree.

Backends: ``"torch"`` (the above), ``"onnxruntime"`` (the network exported
to ONNX by :mod:`skasc._onnx` and run by ONNX Runtime, one thread per worker,
same chunking; needs the optional ``onnx`` and ``onnxruntime`` packages) and
``"auto"`` (``"torch"``, the faster).  Modules that are not a plain
:class:`~skasc.nn.DwsCNN` are run as they are (eager, channels-last) with
the same chunking and workers.  ``torch.compile`` (inductor, freezing) was
tried too and gave no gain over the fused path for a long compile, so it is
not offered.
"""

from __future__ import annotations

import copy
import threading
import warnings
import weakref

import numpy as np
import torch

from ._allocator import settle_thresholds
from ._chunking import auto_chunk, check_batch, n_workers, run_chunked
from ._folded import FoldedDwsCNN as _FoldedDwsCNN  # tests patch it under this name
from ._onnx import OrtRunner, onnx_model_bytes
from ._ops import FUSIONS, fuse_logits, is_plain_dwscnn

__all__ = ["FastPredictor", "cached_fast_predictor", "fast_path_applies"]

_BACKENDS = ("auto", "torch", "onnxruntime")
#: Clips per work unit of a torch worker (low-resolution stage batch).
_UNIT = 16
_CL = torch.channels_last


def _check_folded(folded, modules, input_shape, tol=1e-4):
    """Raise if a folded network does not reproduce its module on a random input."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((2,) + tuple(input_shape), generator=gen)
    with torch.inference_mode():
        for f, m in zip(folded, modules):
            dev = next((p.device for p in m.parameters()), torch.device("cpu"))
            was_training = m.training
            m.eval()
            try:
                ref = m(x.to(dev)).float().cpu()
            finally:
                m.train(was_training)
            got = f.forward(x.contiguous(memory_format=_CL))
            err = float((got - ref).abs().max())
            if not err <= tol * (1.0 + float(ref.abs().max())):
                raise RuntimeError(f"folded logits differ from the module's by {err:.3g}")


def _walk(module, ids, tensors):
    """Append the ids of ``module``'s submodules and their parameters and buffers.

    A plain recursion over ``_modules``: five times faster than
    ``parameters()`` + ``buffers()`` + ``modules()``, which matters for a
    check made at every predict call.
    """
    ids.append(id(module))
    tensors.extend(module._parameters.values())  # may hold None (no bias)
    tensors.extend(module._buffers.values())
    for child in module._modules.values():
        if child is not None:
            _walk(child, ids, tensors)


def _equal(t, c):
    """Whether tensor ``t`` holds the same bits as ``c`` (same dtype, shape, device).

    Bits rather than values, so that a NaN weight equals itself (a module
    with NaN weights is not rebuilt at every call).  numpy compares large
    CPU tensors 1.5-3x faster than ``torch.equal``, which is faster below
    ~8,000 elements.
    """
    if t.dtype != c.dtype or t.device != c.device:
        return False
    bits = _NP_BITS.get(t.dtype)
    if bits is not None and t.is_cpu and t.numel() > 8192:
        return t.shape == c.shape and bool(
            (t.detach().numpy().view(bits) == c.numpy().view(bits)).all())
    if torch.equal(t, c):  # False for another shape
        return True
    bits = _BITS.get(t.element_size()) if t.is_floating_point() else None
    return bits is not None and torch.equal(t.detach().view(bits), c.view(bits))


def _take_snapshot(modules):
    """What :func:`_snapshot_matches` compares: identities and a copy of the state."""
    snapshot = []
    for m in modules:
        ids, tensors = [], []
        _walk(m, ids, tensors)
        snapshot.append((ids, [None if t is None else t.detach().clone() for t in tensors]))
    return snapshot


def _snapshot_matches(snapshot, modules):
    """Whether ``modules`` are the snapshot's objects, with identical parameters and buffers."""
    if snapshot is None or len(snapshot) != len(modules):
        return False
    for m, (snap_ids, copies) in zip(modules, snapshot):
        ids, tensors = [], []
        _walk(m, ids, tensors)
        if ids != snap_ids or len(tensors) != len(copies):
            return False
        for t, c in zip(tensors, copies):
            if t is None or c is None:
                if t is not c:
                    return False
                continue
            if not _equal(t, c):
                return False
    return True


#: Integer dtypes of the float element sizes (bitwise comparison).
_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}
_NP_BITS = {torch.float16: np.int16, torch.float32: np.int32, torch.float64: np.int64}


class FastPredictor:
    """Fast CPU logits of one fitted network or a fused ensemble of them.

    Parameters
    ----------
    modules : torch.nn.Module or sequence of torch.nn.Module
        Fitted networks (their weights are copied when the predictor is
        built: a later change of the modules is not seen, but
        :meth:`is_stale` tells; it keeps one more copy of the parameters
        and buffers for that).  Several modules are fused like
        :class:`skasc.EnsembleTeacher` fuses its members.
    input_shape : tuple of int (C, F, T)
        Shape of one example.
    fusion : {"logits", "proba"}, default="logits"
        How several modules are fused: mean of the logits, or log of the
        mean probability.
    backend : {"auto", "torch", "onnxruntime"}, default="auto"
        ``"auto"`` is ``"torch"``.  ``"onnxruntime"`` needs the optional
        ``onnx`` and ``onnxruntime`` packages and plain DwsCNN modules.
    n_threads : int, default=None
        Worker threads; None: the caller's ``torch.get_num_threads()`` at
        each call of :meth:`logits` (so ``torch.set_num_threads(1)`` makes
        it run in the calling thread).
    chunk_size : int, default=None
        Clips per pass through the full-resolution layers (input
        convolution, first block, first pooling); None: as many as keep one
        full-resolution feature map under about 2 MB (2 at the paper's
        size), at most 64.  A worker takes up to 16 clips at a time and runs
        the low-resolution layers on all of them at once.
    fused_kernels : bool, default=True
        Use PyTorch's oneDNN fused convolutions when available (checked
        against the plain operators at build time).

    Notes
    -----
    The predictor is picklable (run-time objects -- ONNX Runtime sessions,
    pre-packed weights -- are rebuilt lazily after unpickling).  While
    :meth:`logits` runs, each worker thread sets its own intra-op thread
    count to 1; the caller's ``torch.get_num_threads()`` is restored after.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skasc.nn import DwsCNN
    >>> from skasc._inference import FastPredictor
    >>> net = DwsCNN(n_classes=3, hidden=4, input_shape=(1, 16, 12)).eval()
    >>> x = np.random.default_rng(0).normal(size=(5, 1, 16, 12)).astype("float32")
    >>> fast = FastPredictor(net, (1, 16, 12))
    >>> with torch.inference_mode():
    ...     ref = net(torch.from_numpy(x)).numpy()
    >>> bool(np.allclose(fast.logits(x), ref, atol=1e-5))
    True
    """

    def __init__(self, modules, input_shape, fusion="logits", backend="auto",
                 n_threads=None, chunk_size=None, fused_kernels=True):
        if isinstance(modules, torch.nn.Module):
            modules = [modules]
        modules = list(modules)
        if not modules:
            raise ValueError("modules must hold at least one network")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be (C, F, T), got {input_shape!r}")
        self.fusion = fusion
        if n_threads is not None and (isinstance(n_threads, bool) or int(n_threads) < 1):
            raise ValueError(f"n_threads must be None or >= 1, got {n_threads!r}")
        self.n_threads = None if n_threads is None else int(n_threads)
        self.backend = "torch" if backend == "auto" else backend
        self._snapshot = _take_snapshot(modules)
        plain = all(is_plain_dwscnn(m) for m in modules)
        if self.backend == "onnxruntime" and not plain:
            raise ValueError("backend='onnxruntime' needs plain DwsCNN modules")
        for m in modules:
            if tuple(getattr(m, "input_shape", self.input_shape)) != self.input_shape:
                raise ValueError(
                    f"module input_shape {tuple(m.input_shape)} != {self.input_shape}")
        folded = None
        if plain:
            try:
                folded = [_FoldedDwsCNN(m) for m in modules]
                _check_folded(folded, modules, self.input_shape)
            except Exception as exc:  # a DwsCNN this code does not know (yet)
                if self.backend == "onnxruntime":
                    raise
                warnings.warn(
                    f"FastPredictor could not fold the network ({exc}); running the "
                    "modules as they are (still chunked and multi-threaded)",
                    RuntimeWarning, stacklevel=2)
                folded = None
        if folded is not None:
            self._folded = folded
            self._modules = None
            act = max(f.act_bytes for f in self._folded)
        else:  # run as it is
            self._folded = None
            self._modules = [
                (m if all(p.device.type == "cpu" for p in m.parameters())
                 else copy.deepcopy(m).cpu()).eval()
                for m in modules]
            act = 4 * 64 * self.input_shape[1] * self.input_shape[2]
        self.chunk_size = int(chunk_size) if chunk_size else auto_chunk(act)
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")
        self.fused_kernels = bool(fused_kernels)
        self._onnx_bytes = None
        self._runtime = None  # built lazily: not pickled
        if self.backend == "onnxruntime":
            self._onnx_bytes = onnx_model_bytes(modules, self.input_shape, fusion)
        self._ensure_runtime()

    # -- state ----------------------------------------------------------------
    def is_stale(self, modules):
        """True if ``modules`` are not the ones, or not in the state, it was built from.

        Compares the modules' identities (and those of their submodules),
        then the content of every parameter and buffer, bit for bit, with a
        copy taken when the predictor was built.  Version counters or
        storage pointers would miss edits through ``.data``
        (``p.data.mul_(0.5)``, ``p.data = t``), which share neither.  The
        check is a few percent of the time to predict one clip, and the copy
        is as large as the parameters and buffers (37 MB for four
        hidden=256 networks).  Always True after unpickling
        (the copy is not pickled).
        """
        if isinstance(modules, torch.nn.Module):
            modules = [modules]
        return not _snapshot_matches(self._snapshot, list(modules))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_runtime"] = None
        state["_snapshot"] = None  # ids mean nothing in another process
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def uses_fused_kernels(self):
        """Whether the oneDNN fused kernels are in use (torch backend)."""
        self._ensure_runtime()
        return bool(self._runtime.get("fused"))

    def _ensure_runtime(self):
        if self._runtime is not None:
            return self._runtime
        rt = {"fused": False}
        settle_thresholds()
        if self.backend == "onnxruntime":
            rt["ort"] = OrtRunner(self._onnx_bytes, self.input_shape, n_threads=self.n_threads,
                                  chunk_size=self.chunk_size)
        elif self._folded is not None and self.fused_kernels:
            rt["fused"] = self._try_fused()
        self._runtime = rt
        return rt

    def _try_fused(self):
        """Pre-pack weights and check the fused kernels against the plain ones."""
        mk = getattr(torch.ops, "mkldnn", None)
        if mk is None or not torch.backends.mkldnn.is_available():
            return False
        try:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn((1,) + self.input_shape, generator=gen)
            x = x.contiguous(memory_format=_CL)
            with torch.inference_mode():
                for f in self._folded:
                    f.prepare(self.chunk_size)
                    ref = f.forward(x, fused=False)
                    got = f.forward(x, fused=True)
                    scale = float(ref.abs().max()) + 1.0
                    if not torch.isfinite(got).all() or float((got - ref).abs().max()) > 1e-4 * scale:
                        raise RuntimeError("fused kernels disagree")
        except Exception:  # missing/changed private ops: plain operators
            for f in self._folded:
                f._packed = None
            return False
        return True

    # -- inference ------------------------------------------------------------
    def _chunk_logits(self, x):
        """Fused logits of one chunk (numpy (n, C, F, T) float32) -> torch (n, K)."""
        rt = self._runtime
        if self.backend == "onnxruntime":
            return rt["ort"]._chunk(x)
        xt = torch.from_numpy(x).contiguous(memory_format=_CL)
        with torch.inference_mode():
            if self._folded is not None:
                outs = [f.forward(xt, fused=rt["fused"], split=self.chunk_size)
                        for f in self._folded]
            else:
                outs = [m(xt).float() for m in self._modules]
            return fuse_logits(outs, self.fusion).clone()

    def logits(self, x):
        """Logits of ``x``, shape (N, n_classes), float32.

        Parameters
        ----------
        x : array-like of shape (N, C, F, T) (or (N, F, T) when C == 1)
            Features, any batch size: they are processed in chunks of
            :attr:`chunk_size` clips by :attr:`n_threads` workers.
        """
        x = check_batch(x, self.input_shape)
        self._ensure_runtime()
        unit = self.chunk_size
        n_threads = n_workers(self.n_threads)
        if self._folded is not None and self.backend == "torch":
            # a worker takes up to _UNIT clips: the full-resolution stage runs
            # on chunk_size of them at a time, the low-resolution rest on all
            per_worker = -(-len(x) // n_threads)
            unit = max(self.chunk_size, min(_UNIT, per_worker))
        return run_chunked(self._chunk_logits, x, unit, n_threads,
                            torch_workers=self.backend != "onnxruntime")

    def __repr__(self):
        return (f"FastPredictor(n_modules={len(self._folded or self._modules)}, "
                f"input_shape={self.input_shape}, fusion={self.fusion!r}, "
                f"backend={self.backend!r}, n_threads={self.n_threads}, "
                f"chunk_size={self.chunk_size})")


_CACHE = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def _has_hooks(modules):
    """True if a forward (pre-)hook would see the modules' forward passes."""
    from torch.nn.modules import module as _module

    if getattr(_module, "_global_forward_hooks", None) or getattr(
            _module, "_global_forward_pre_hooks", None):
        return True
    return any(sub._forward_hooks or sub._forward_pre_hooks
               for m in modules for sub in m.modules())


def fast_path_applies(modules, device="cpu"):
    """Whether :class:`FastPredictor` should replace the eager forward passes.

    False on a non-CPU device, and when a forward hook is registered on one
    of the modules (or globally): the fast path never calls the modules'
    ``forward``, so a hook would not see the predictions' inputs.
    """
    modules = [modules] if isinstance(modules, torch.nn.Module) else list(modules)
    return torch.device(device).type == "cpu" and not _has_hooks(modules)


def cached_fast_predictor(owner, modules, input_shape, fusion="logits", device="cpu"):
    """The :class:`FastPredictor` of ``modules``, cached per ``owner``; None if it does not apply.

    Returns None when :func:`fast_path_applies` is False (``device`` not the
    CPU, or forward hooks registered): use the eager path then.  The cache
    lives outside ``owner`` (a weak-keyed dictionary), so an estimator
    calling this from ``predict`` keeps its ``__dict__`` unchanged
    (scikit-learn's ``check_dict_unchanged``), pickles and clones without
    it, and the entry disappears with the estimator.  The predictor is
    rebuilt when the modules are other objects or any of their parameters
    or buffers changed in content, however it was changed (refit,
    ``load_state_dict``, an optimizer step, edits through ``.data``, see
    :meth:`FastPredictor.is_stale`), or the fusion changed.

    Parameters
    ----------
    owner : object
        Usually the fitted estimator.
    modules : sequence of torch.nn.Module
    input_shape : tuple (C, F, T)
    fusion : {"logits", "proba"}, default="logits"
    device : str or torch.device, default="cpu"
        Where the estimator computes; the fast path is for the CPU only.

    Returns
    -------
    FastPredictor or None
    """
    modules = [modules] if isinstance(modules, torch.nn.Module) else list(modules)
    if not fast_path_applies(modules, device):
        return None
    try:
        with _CACHE_LOCK:
            fast = _CACHE.get(owner)
    except TypeError:  # owner not weak-referenceable / hashable: no cache
        return FastPredictor(modules, input_shape, fusion=fusion)
    if (fast is None or fast.fusion != fusion or fast.input_shape != tuple(input_shape)
            or fast.is_stale(modules)):
        fast = FastPredictor(modules, input_shape, fusion=fusion)
        with _CACHE_LOCK:
            _CACHE[owner] = fast
    return fast
