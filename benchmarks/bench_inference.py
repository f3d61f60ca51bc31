"""Inference throughput of the DwsCNN: eager PyTorch, skasc's fast path, ONNX Runtime.

Measures clips/s on a batch of random log-mel inputs (paper size 1x256x51 by
default) for:

* ``eager``           -- ``module(x)`` on the whole batch, contiguous (NCHW);
* ``eager_cl``        -- the same, channels-last module and input;
* ``skasc_torch``     -- :class:`skasc._inference.FastPredictor` (torch backend);
* ``skasc_ort``       -- FastPredictor, onnxruntime backend (same chunking/workers);
* ``ort_plain``       -- ONNX Runtime on a plain ``torch.onnx.export`` of the module
  (default session options, ``intra_op_num_threads = --threads``), one
  ``run`` on the whole batch;
* ``ort_int8``        -- ONNX Runtime on the int8 (QDQ) export, one ``run`` on the
  whole batch; ``ort_int8_chunked`` -- the same file through skasc's
  chunked workers (:class:`skasc._inference.OrtRunner`).

All variants use the same batch and ``--threads`` threads, and are run in
interleaved rounds (A B C ... A B C ...) so that a change of the machine's
load hits them alike; the script reports the median over rounds of the
clips/s, its range, and the median (and range) of the per-round ratios
skasc/eager and skasc/ORT.  ``cpu ms/clip`` is the process CPU time per clip
(less sensitive to other jobs than wall time).

Run::

    python benchmarks/bench_inference.py                  # hidden=18, 1x256x51, batch 256, 2 threads
    python benchmarks/bench_inference.py --repeat 15 --no-int8
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from skasc._inference import FastPredictor, OrtRunner  # noqa: E402
from skasc.nn import DwsCNN  # noqa: E402


def make_model(hidden, shape, n_classes, seed=0):
    torch.manual_seed(seed)
    m = DwsCNN(n_classes=n_classes, hidden=hidden, input_shape=shape).eval()
    # non-trivial BatchNorm statistics, as after training
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.2)
    if hasattr(m, "set_input_normalization"):  # per-band standardisation buffers
        m.set_input_normalization(torch.randn(shape[1]) * 3 - 20, torch.rand(shape[1]) * 5 + 10)
    return m


def plain_onnx_bytes(module, shape):
    """What a user would do: torch.onnx.export with a dynamic batch axis."""
    buf = io.BytesIO()
    x = torch.zeros((2,) + tuple(shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (x,), buf, input_names=["logmel"], output_names=["logits"],
                              dynamic_axes={"logmel": {0: "N"}, "logits": {0: "N"}},
                              opset_version=17, dynamo=False)
        except Exception:  # no TorchScript exporter: skasc's own graph
            from skasc._onnx import onnx_model_bytes

            return onnx_model_bytes([module], shape, "logits")
    return buf.getvalue()


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=18)
    ap.add_argument("--bands", type=int, default=256)
    ap.add_argument("--frames", type=int, default=51)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved rounds")
    ap.add_argument("--chunk", type=int, default=None, help="FastPredictor chunk size")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--no-eager", action="store_true", help="skip the (slow) eager variants")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    shape = (1, args.bands, args.frames)
    module = make_model(args.hidden, shape, args.classes)
    module_cl = make_model(args.hidden, shape, args.classes).to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch,) + shape).astype(np.float32)
    xt = torch.from_numpy(x)
    xt_cl = xt.contiguous(memory_format=torch.channels_last)

    print(f"DwsCNN hidden={args.hidden} input={shape} batch={args.batch} threads={args.threads} "
          f"torch={torch.__version__} cpus={os.cpu_count()} "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    t0 = time.perf_counter()
    fast = FastPredictor(module, shape, n_threads=args.threads, chunk_size=args.chunk)
    print(f"FastPredictor built in {time.perf_counter() - t0:.2f} s: {fast!r}, "
          f"fused oneDNN kernels: {fast.uses_fused_kernels}")

    variants = {}
    if not args.no_eager:
        def eager():
            with torch.inference_mode():
                return module(xt).numpy()

        def eager_cl():
            with torch.inference_mode():
                return module_cl(xt_cl).numpy()

        variants["eager"] = eager
        variants["eager_cl"] = eager_cl
    variants["skasc_torch"] = lambda: fast.logits(x)

    have_ort = False
    if not args.no_onnx:
        try:
            import onnxruntime as ort
            have_ort = True
        except ImportError:
            print("onnxruntime not installed: ONNX variants skipped")
    if have_ort:
        fast_ort = FastPredictor(module, shape, backend="onnxruntime", n_threads=args.threads,
                                 chunk_size=args.chunk)
        variants["skasc_ort"] = lambda: fast_ort.logits(x)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        plain = ort.InferenceSession(plain_onnx_bytes(module, shape), so,
                                     providers=["CPUExecutionProvider"])
        variants["ort_plain"] = lambda: plain.run(None, {"logmel": x})[0]
        if not args.no_int8:
            from skasc.export import export_onnx, quantized_param_bytes

            tmp = tempfile.mkdtemp()
            qpath = pathlib.Path(tmp) / "int8.onnx"
            calib = rng.normal(size=(64,) + shape).astype(np.float32)
            t0 = time.perf_counter()
            export_onnx(module, qpath, quantize="int8", calibration_X=calib)
            print(f"int8 export in {time.perf_counter() - t0:.1f} s, "
                  f"{quantized_param_bytes(qpath)} parameter bytes "
                  f"({sum(p.numel() for p in module.parameters())} float parameters)")
            q = ort.InferenceSession(str(qpath), so, providers=["CPUExecutionProvider"])
            variants["ort_int8"] = lambda: q.run(None, {"logmel": x})[0]
            q_runner = OrtRunner(qpath.read_bytes(), shape, n_threads=args.threads,
                                 chunk_size=args.chunk)
            variants["ort_int8_chunked"] = lambda: q_runner.logits(x)

    # agreement with eager (probabilities)
    with torch.inference_mode():
        ref = softmax(module(xt[:64]).numpy())
    for name in ("skasc_torch", "skasc_ort", "ort_plain", "ort_int8"):
        if name in variants:
            out = variants[name]()[:64]
            print(f"  {name:18s} max |p - p_eager| = {np.abs(softmax(out) - ref).max():.2e}"
                  f"   top-1 agreement {np.mean(out.argmax(1) == ref.argmax(1)):.3f}")

    for f in variants.values():  # warm-up
        f()
    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    load0 = os.getloadavg()
    for _ in range(args.repeat):
        for k, f in variants.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            t1, c1 = time.perf_counter(), time.process_time()
            wall[k].append(args.batch / (t1 - t0))
            cpu[k].append((c1 - c0) / args.batch * 1e3)
    load1 = os.getloadavg()
    print(f"\nload average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} cpus; "
          f"{args.repeat} interleaved rounds")
    print(f"{'variant':18s} {'clips/s med':>11s} {'[min, max]':>17s} {'cpu ms/clip':>11s}")
    for k in variants:
        w = np.array(wall[k])
        print(f"{k:18s} {np.median(w):11.1f}   [{w.min():6.1f}, {w.max():6.1f}] "
              f"{np.median(cpu[k]):11.2f}")

    def ratio(a, b):
        if a in wall and b in wall:
            r = np.array(wall[a]) / np.array(wall[b])
            print(f"ratio {a}/{b}: median {np.median(r):.2f} (per-round range "
                  f"{r.min():.2f}-{r.max():.2f}; quartiles {np.percentile(r, 25):.2f}-"
                  f"{np.percentile(r, 75):.2f})")

    print()
    ratio("skasc_torch", "eager")
    ratio("skasc_torch", "eager_cl")
    ratio("skasc_torch", "ort_plain")
    ratio("skasc_ort", "ort_plain")
    ratio("ort_int8", "ort_plain")
    ratio("ort_int8_chunked", "skasc_torch")


if __name__ == "__main__":
    main()
