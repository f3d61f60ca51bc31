"""Where a pretrained checkpoint comes from: a local file, the copy shipped
with the package, the cache folder, or a download from the authors' release.

Every file is checked before it is used: the shipped and known checkpoints
against their known digest (skasc's one content hash, BLAKE2b-128,
:mod:`skasc._hashing`), any file against the network's parameter
names and shapes (``load_state_dict(strict=True)``, done by the caller).
A download is written to a temporary name and renamed into the cache only
once it is complete and its checksum matches, so an interrupted or corrupt
download never becomes a cached checkpoint.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import torch

from ._files import write_atomically, write_error
from ._hashing import file_digest

__all__ = ["RELEASE_URL", "CHECKPOINTS", "cache_folder", "resolve_weights", "load_checkpoint"]

#: The authors' release the published checkpoints are downloaded from.
RELEASE_URL = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/"

#: Model name -> (release file, BLAKE2b-128 digest or None).  Only mn04's could
#: be verified for this package (its file is shipped); the others are pinned
#: on first download: their digest is stored beside the cached file and
#: checked on every later load, and the file must load strictly into the
#: network of its width.
CHECKPOINTS = {
    "mn01_as": ("mn01_as_mAP_298.pt", None),
    "mn02_as": ("mn02_as_mAP_378.pt", None),
    "mn04_as": ("mn04_as_mAP_432.pt",
                "64d0512008e7cc45b8e5d5000e5ac759"),
    "mn05_as": ("mn05_as_mAP_443.pt", None),
    "mn10_as": ("mn10_as_mAP_471.pt", None),
    "mn20_as": ("mn20_as_mAP_478.pt", None),
    "mn30_as": ("mn30_as_mAP_482.pt", None),
    "mn40_as": ("mn40_as_mAP_484.pt", None),
    "mn40_as_ext": ("mn40_as_ext_mAP_487.pt", None),
}

_SHIPPED = Path(__file__).with_name("weights")


def cache_folder():
    """The folder downloaded checkpoints are kept in.

    ``$SKASC_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/skasc`` or
    ``~/.cache/skasc``.
    """
    if os.environ.get("SKASC_CACHE_DIR"):
        return Path(os.environ["SKASC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skasc"


def _pin(path):
    """Where the digest of a checkpoint downloaded without a known one is kept."""
    return path.with_name(path.name + ".blake2b")


def _check_digest(path, expected, what):
    got = file_digest(path)
    if got != expected:
        raise ValueError(
            f"{what} {str(path)!r} has digest {got}, expected {expected}: the file is corrupt "
            "or not the published checkpoint; delete it (it is downloaded again) or pass "
            "weights=<path> to a file you trust"
        )


def _download(url, target, expected):
    """Download ``url`` to ``target``: written under a temporary name, checked
    against ``expected`` (its digest) and only then renamed into place, by
    :func:`skasc._files.write_atomically` (which also names a full disk)."""

    def fetch(tmp):
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if write_error(target, exc) is not None:
                raise  # a full disk, not the network: write_atomically names it
            where = f", or put it at {target}" if expected is not None else ""
            raise OSError(
                f"could not download the checkpoint from {url} ({exc}); without network "
                f"access download it elsewhere and pass weights=<path to the file>{where}"
            ) from None
        if expected is not None:
            _check_digest(tmp, expected, "the downloaded checkpoint")

    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, fetch)
    if expected is None:  # pinned from now on
        digest = file_digest(target)
        write_atomically(_pin(target),
                         lambda tmp: tmp.write_text(digest + "\n"))
    return target


def resolve_weights(model, weights=None, *, base_url=None):
    """The path of the checkpoint to load for ``model``.

    Parameters
    ----------
    model : str
        A name of :data:`CHECKPOINTS` (e.g. ``"mn04_as"``).
    weights : str, path or None, default=None
        A local file (used as it is, after checking that it exists), or None:
        the copy shipped with skasc, else the cache folder
        (:func:`cache_folder`), else a download from :data:`RELEASE_URL`
        (``base_url`` replaces it; ``$SKASC_WEIGHTS_URL`` too).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Unknown model name, a missing file, or a checksum that does not match.
    OSError
        The download failed (the message says how to work offline).
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ValueError(
                f"weights={str(weights)!r}: no such file" + (" (it is a folder)" if path.is_dir() else ""))
        return path
    if model not in CHECKPOINTS:
        raise ValueError(
            f"model={model!r} has no published checkpoint; known: {', '.join(CHECKPOINTS)} "
            "(or pass weights=<path> to a checkpoint of that width, or weights=False)")
    file, expected = CHECKPOINTS[model]
    shipped = _SHIPPED / file
    if shipped.is_file():
        _check_digest(shipped, expected, "the checkpoint shipped with skasc")
        return shipped
    cached = cache_folder() / file
    if cached.is_file():
        pin = _pin(cached)
        pinned = expected or (pin.read_text().strip() if pin.is_file() else None)
        if pinned is None:
            raise ValueError(
                f"the cached checkpoint {str(cached)!r} has no recorded checksum (it was not "
                "downloaded by skasc, or its .blake2b file was removed); delete it to download "
                "it again, or pass weights=<path> to use it as it is")
        _check_digest(cached, pinned, "the cached checkpoint")
        return cached
    base = base_url or os.environ.get("SKASC_WEIGHTS_URL") or RELEASE_URL
    return _download(base.rstrip("/") + "/" + file, cached, expected)


def load_checkpoint(path):
    """The state dict stored at ``path`` (tensors only: ``weights_only=True``).

    Raises ValueError naming the file when it is not a readable checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reading failure is the file's fault
        raise ValueError(f"weights file {str(path)!r} is not a readable PyTorch checkpoint: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {str(path)!r} holds no state dict of tensors")
    return state
