"""Time LogMel's content-keyed cache: digesting the audio against computing the features.

``LogMel(memory=...)`` keys each recording's features on a BLAKE2b digest of
its content (every byte of each file), so every transform reads and digests
the audio even when the features come from the cache.  This prints, on the
default :func:`skasc.datasets.make_tau22` replica (or ``--data-root``), one
thread: the time to compute the features without a cache, the time to
digest every recording, and a transform served from a warm cache.

Example::

    python benchmarks/bench_feature_cache.py
"""

import argparse
import os
import tempfile
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", help="a TAU22 folder (default: a replica written to a temporary folder)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from skasc import LogMel, Reassembler
    from skasc.datasets import load_tau22, make_tau22
    from skasc.preprocessing import _recording_audio as recording_audio

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or make_tau22(os.path.join(tmp, "tau22"), random_state=0)
        audio = Reassembler().fit_transform(load_tau22(root, "all").X)
        LogMel().fit_transform(audio[:50])  # warm the page cache and the kernel
        t = time.perf_counter()
        LogMel().fit_transform(audio)
        plain = time.perf_counter() - t
        t = time.perf_counter()
        for rec in audio.recordings:
            for unit in recording_audio.read_units(rec):
                recording_audio.content_digest(unit, recording_audio.raw_content(unit))
        digest = time.perf_counter() - t
        cache = os.path.join(tmp, "cache")
        LogMel(memory=cache).fit_transform(audio)
        t = time.perf_counter()
        LogMel(memory=cache).fit_transform(audio)
        cached = time.perf_counter() - t
    print(f"{len(audio)} clips, {len(audio.recordings)} recordings, one thread:")
    print(f"  features computed  {plain:6.2f} s")
    print(f"  audio digested     {digest:6.2f} s  ({digest / plain:.0%} of computing)")
    print(f"  served from cache  {cached:6.2f} s  ({plain / cached:.1f}x faster than computing)")


if __name__ == "__main__":
    main()
