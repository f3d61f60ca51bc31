"""Accuracy and parameter memory of the int8-quantized student on the built-in data.

Trains (or loads, from ``skasc reproduce``'s output folder) the distilled
student, exports it to ONNX in float and int8 (static, per-channel,
calibrated on training features), and prints the macro accuracy of each on
the evaluate split, the drop, and the parameter memory.

    skasc reproduce --out-dir skasc-output && python benchmarks/bench_int8.py --run-dir skasc-output
"""

import argparse
import glob
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from skasc import complexity_report, export_onnx
from skasc.datasets import load_tau22
from skasc.export import OnnxClassifier, quantized_param_bytes
from skasc.metrics import macro_accuracy
from skasc.reproduce import DEMO, _front_end


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="skasc-output", help="output folder of `skasc reproduce` (demo schedule)")
    ap.add_argument("--n-calibration", type=int, default=512)
    args = ap.parse_args()
    run = Path(args.run_dir)
    student = joblib.load(sorted(glob.glob(str(run / "models" / "student-kd-*.joblib")))[-1])
    root = run / "tau22-replica"
    train, test = load_tau22(root, "train"), load_tau22(root, "evaluate")
    front = Pipeline(_front_end(DEMO, str(run / "feature-cache")))
    front.fit(train.X)
    calib = np.asarray(front.transform(train.X[:: max(1, len(train.X) // args.n_calibration)]))
    Xe = front.transform(test.X)
    tmp = Path(tempfile.mkdtemp())
    fp32 = export_onnx(student, tmp / "student.onnx")
    int8 = export_onnx(student, tmp / "student-int8.onnx", quantize="int8",
                       calibration_X=calib.reshape(len(calib), *student.input_shape_[1:]))
    acc = {}
    for name, model in (("torch", student), ("onnx float32", OnnxClassifier(fp32)),
                        ("onnx int8", OnnxClassifier(int8))):
        acc[name] = macro_accuracy(test.y, model.predict(Xe))
        print(f"{name:>13}: macro accuracy {100 * acc[name]:.2f} %")
    print(f"int8 drop vs float32: {100 * (acc['onnx float32'] - acc['onnx int8']):+.2f} points")
    rep = complexity_report(student)
    print(f"parameters {rep.total_params:,}; memory float32 {rep.param_bytes['float32']:,} B, "
          f"int8 {rep.param_bytes['int8']:,} B (complexity_report); int8 ONNX initializers "
          f"{quantized_param_bytes(int8):,} B")


if __name__ == "__main__":
    main()
