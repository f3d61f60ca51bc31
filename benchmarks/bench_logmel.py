"""Time skasc's batched log-mel kernel against librosa on the same clips.

Both compute ``power_to_db(melspectrogram(...), ref=1, amin=1e-10,
top_db=None)`` with the DCASE 2023 Task 1 parameters (44.1 kHz, n_fft 4096,
Hamming window of 3528 samples, hop 882, 256 mel bands, centred frames,
constant padding) on the same synthetic clips (coloured noises and tones at
-20..-60 dBFS, level changes and near-silent stretches), with the same
number of threads: torch's intra-op threads and skasc's ``n_threads`` for
skasc, and the BLAS/OpenMP pools (threadpoolctl, and the environment before
numpy is imported) for librosa/numpy.

Example::

    python benchmarks/bench_logmel.py --n-clips 64 --seconds 10 --threads 1 --repeat 3

It prints clips/s for each, their ratio (skasc / librosa; the goal is >= 3)
and the largest absolute difference in dB between the two.  Timings are
wall-clock; the best of ``--repeat`` runs counts, the two libraries' runs
alternate so that load from other processes affects both alike, and the CPU
time per clip is printed too (for one thread it is insensitive to other
processes competing for the cores).
"""

import argparse
import os
import sys
import time


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-clips", type=int, default=64, help="number of clips (default 64)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length in s (default 10)")
    p.add_argument("--threads", type=int, default=1, help="threads for both (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each (default 3)")
    p.add_argument("--sr", type=int, default=44100, help="sampling rate (default 44100)")
    p.add_argument("--librosa-batch", type=int, default=8,
                   help="clips per librosa call (librosa takes (n, samples) batches; "
                        "default 8)")
    p.add_argument("--check-clips", type=int, default=4,
                   help="clips also compared with a float64 librosa reference (default 4)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("n_clips", "threads", "repeat", "librosa_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.seconds <= 0:
        p.error("--seconds must be > 0")
    return args


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    # Before numpy/torch load their thread pools (threadpoolctl, below, also
    # limits them at run time where it is installed).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import contextlib  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - environment variables only
    threadpool_limits = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import librosa  # noqa: E402

from skasc._logmel import logmel  # noqa: E402

PARAMS = dict(n_fft=4096, win_length=3528, hop_length=882, n_mels=256)


def synthetic_clips(n_clips, n_samples, sr, seed=0):
    """Float32 clips: two coloured noises (white/pink/brown) and three tones
    at -20..-60 dBFS, a slow level change and a near-silent stretch."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sr
    f = np.arange(n_samples // 2 + 1, dtype=float)
    f[0] = 1.0
    out = np.empty((n_clips, n_samples), dtype=np.float32)
    for i in range(n_clips):
        x = np.zeros(n_samples)
        for exponent in rng.choice([0.0, 1.0, 2.0], size=2, replace=False):
            noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n_samples))
                                 / f ** (exponent / 2), n_samples)
            x += 10 ** (rng.uniform(-60, -20) / 20) * noise / np.sqrt(np.mean(noise**2))
        for _ in range(3):
            x += 10 ** (rng.uniform(-60, -20) / 20) * np.sin(
                2 * np.pi * rng.uniform(40, 16000) * t + rng.uniform(0, 6))
        x *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
        a = rng.integers(0, max(1, n_samples // 2))
        x[a:a + n_samples // 5] *= 10 ** (rng.uniform(-80, -50) / 20)
        out[i] = x
    return out


def librosa_logmel(y, sr):
    S = librosa.feature.melspectrogram(
        y=y, sr=sr, window="hamming", center=True, pad_mode="constant", power=2.0,
        **PARAMS)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)


def librosa_logmel64(y, sr):
    """librosa's pipeline in float64 (float64 STFT and filterbank)."""
    D = librosa.stft(y.astype(np.float64), n_fft=PARAMS["n_fft"],
                     hop_length=PARAMS["hop_length"], win_length=PARAMS["win_length"],
                     window="hamming", center=True, pad_mode="constant")
    mel = librosa.filters.mel(sr=sr, n_fft=PARAMS["n_fft"], n_mels=PARAMS["n_mels"],
                              dtype=np.float64)
    S = np.einsum("mf,...ft->...mt", mel, np.abs(D) ** 2, optimize=True)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(args):
    torch.set_num_threads(args.threads)
    limits = (threadpool_limits(limits=args.threads) if threadpool_limits is not None
              else contextlib.nullcontext())
    n_samples = int(round(args.seconds * args.sr))
    X = synthetic_clips(args.n_clips, n_samples, args.sr, args.seed)

    def run_skasc():
        return logmel(X, sr=args.sr, n_threads=args.threads, **PARAMS)

    def run_librosa():
        return np.concatenate([librosa_logmel(X[i:i + args.librosa_batch], args.sr)
                               for i in range(0, len(X), args.librosa_batch)])

    with limits, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up (plans, FFT descriptors, allocator)
        logmel(X[:2], sr=args.sr, n_threads=args.threads, **PARAMS)
        librosa_logmel(X[:2], args.sr)
        times = {"skasc": [], "librosa": []}
        for _ in range(args.repeat):
            ours, w, c = _timed(run_skasc)
            times["skasc"].append((w, c))
            theirs, w, c = _timed(run_librosa)
            times["librosa"].append((w, c))
        k = min(args.check_clips, len(X))
        ref64 = librosa_logmel64(X[:k], args.sr) if k else None

    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"log-mel of {args.n_clips} clips x {args.seconds:g} s @ {args.sr} Hz "
          f"({ours.shape[1]} bands x {ours.shape[2]} frames), threads={args.threads}, "
          f"repeat={args.repeat}")
    print(f"  torch {torch.__version__}, librosa {librosa.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load}, "
          f"threadpoolctl {'yes' if threadpool_limits else 'no (env only)'}")
    best = {}
    for name, label in (("skasc", "skasc logmel"), ("librosa", "librosa     ")):
        wall = np.array([t[0] for t in times[name]])
        cpu = np.array([t[1] for t in times[name]])
        best[name] = wall.min()
        print(f"  {label}: {args.n_clips / wall.min():8.1f} clips/s  "
              f"(best {wall.min():.3f} s, median {np.median(wall):.3f} s; "
              f"{1e3 * wall.min() / args.n_clips:.2f} ms/clip, "
              f"CPU {1e3 * cpu.min() / args.n_clips:.2f} ms/clip)")
    print(f"  ratio skasc/librosa (clips/s): {best['librosa'] / best['skasc']:.2f}x")
    print(f"  max |dB difference| vs librosa (float32, all clips): "
          f"{np.abs(ours.astype(np.float64) - theirs).max():.2e}")
    if ref64 is not None:
        print(f"  max |dB difference| vs librosa float64 reference (first {k} clips): "
              f"{np.abs(ours[:k].astype(np.float64) - ref64).max():.2e}")
    return best["librosa"] / best["skasc"]


if __name__ == "__main__":
    main(ARGS)
