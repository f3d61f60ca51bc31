"""Features kept on disk: a FeatureSet store that memory does not have to hold.

A :class:`DiskStore` stands where a :class:`~skasc.FeatureSet` keeps its
``(frames, bands)`` float32 array, for data sets whose features do not fit
in memory (the real TAU22 development set: ~6.8 GiB for the training split
at 256x51).  It is a raw file of frames, float32 or float16, read with
positioned reads (``os.pread``): a batch's windows are read when it is
drawn, into a new array, so the process's resident memory stays bounded by
the batch whatever the store's size (a memory map would count every page
ever touched as resident, up to the whole file).  Reads of a store in the
page cache run at memory speed; the first epoch reads from the disk.

Written by :class:`~skasc.LogMel` (``feature_store=``), read-only after.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["DiskStore", "STORE_DTYPES"]

#: On-disk sample types: float16 halves the file (and the first epoch's
#: reads) at a resolution of ~0.03 dB at -60 dB, far below the features' noise.
STORE_DTYPES = ("float32", "float16")


class DiskStore:
    """A read-only ``(n_frames, n_bands)`` array of features in a file.

    Parameters
    ----------
    path : str or path-like
        The file: ``n_frames * n_bands`` values of ``dtype``, C order.
    n_frames, n_bands : int
    dtype : {"float32", "float16"}
        What the file holds; reads are always float32.
    key : str
        Digest of the content the file was computed from (the recordings'
        content and the feature parameters): what a training fingerprint
        hashes instead of the frames.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skasc._disk_store import DiskStore
    >>> path = os.path.join(tempfile.mkdtemp(), "features.f16")
    >>> np.arange(12, dtype="float16").tofile(path)
    >>> store = DiskStore(path, 4, 3, "float16", key="k")
    >>> store.shape, store.windows(np.array([0, 2]), 2).shape
    ((4, 3), (2, 2, 3))
    >>> store[1:3].tolist()
    [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    """

    ndim = 2

    def __init__(self, path, n_frames, n_bands, dtype="float32", key=""):
        if dtype not in STORE_DTYPES:
            raise ValueError(f"dtype must be one of {STORE_DTYPES}, got {dtype!r}")
        self.path = os.fspath(path)
        self.n_frames, self.n_bands = int(n_frames), int(n_bands)
        self.file_dtype = np.dtype(dtype)
        self.key = str(key)
        self._fd = None
        expected = self.n_frames * self.n_bands * self.file_dtype.itemsize
        stat = os.stat(self.path)
        size = stat.st_size
        # the file as it was written: a store recomputed since (its audio
        # changed) is refused by this object rather than read as its data
        self._identity = (stat.st_ino, stat.st_mtime_ns, size)
        if size != expected:
            raise ValueError(
                f"feature store {self.path!r} holds {size} bytes, expected {expected}"
                f" ({self.n_frames} frames x {self.n_bands} bands of {dtype}): the file was"
                " changed or truncated; delete its folder to compute the features again"
            )

    # -- array protocol -----------------------------------------------------
    @property
    def shape(self):
        return (self.n_frames, self.n_bands)

    @property
    def dtype(self):
        return np.dtype(np.float32)

    def __len__(self):
        return self.n_frames

    def __repr__(self):
        return f"DiskStore({self.path!r}, shape={self.shape}, file dtype={self.file_dtype.name})"

    def __array__(self, dtype=None, copy=None):
        # the point of a disk store is that no step holds all of it
        raise TypeError(
            f"{self!r} is not read into memory as a whole: read frames by slice or window"
            " (a FeatureSet on it reads the windows it needs)"
        )

    def __getstate__(self):  # a pickle carries the path, never an open descriptor
        return {k: v for k, v in self.__dict__.items() if k != "_fd"} | {"_fd": None}

    def _check_unchanged(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        stat = os.fstat(self._fd)
        if (stat.st_ino, stat.st_mtime_ns, stat.st_size) != self._identity:
            raise ValueError(
                f"feature store {self.path!r} changed since these features were made (its audio"
                " changed and LogMel computed it again, or the file was edited): transform the"
                " data again for features that match it"
            )

    def _read(self, start, count, out):
        """Frames [start, start + count) into ``out`` (float32, (count, bands))."""
        row = self.n_bands * self.file_dtype.itemsize
        data = os.pread(self._fd, count * row, start * row)
        if len(data) != count * row:
            raise OSError(f"feature store {self.path!r} ended early: was it truncated?")
        out[...] = np.frombuffer(data, dtype=self.file_dtype).reshape(count, self.n_bands)

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n_frames)
            if step == 1:
                out = np.empty((max(0, stop - start), self.n_bands), np.float32)
                self._check_unchanged()
                if len(out):
                    self._read(start, len(out), out)
                return out
        frames = np.asarray(key)
        if frames.dtype.kind not in "iu":
            raise IndexError("a DiskStore is indexed by frame slices or integer arrays")
        flat = frames.reshape(-1)
        out = np.empty((len(flat), self.n_bands), np.float32)
        self._check_unchanged()
        # consecutive frames are read in one go (a window is one read)
        breaks = np.flatnonzero(np.diff(flat) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(flat)]):
            if hi > lo:
                self._read(int(flat[lo]), int(hi - lo), out[lo:hi])
        return out.reshape(frames.shape + (self.n_bands,))

    def windows(self, starts, width):
        """Frames ``[s, s + width)`` for each of ``starts``: (n, width, bands) float32."""
        starts = np.asarray(starts, dtype=np.int64)
        out = np.empty((len(starts), int(width), self.n_bands), np.float32)
        self._check_unchanged()
        for i, s in enumerate(starts):
            self._read(int(s), int(width), out[i])
        return out

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
