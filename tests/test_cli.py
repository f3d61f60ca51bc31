"""The main job: ``skasc reproduce`` end to end on the generated replica."""

import json
import subprocess
import sys


def _reproduce(root, out, *extra):
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(out.parent), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "skasc.cli", "reproduce", "--data-root", str(root), "--schedule", "demo",
           "--out-dir", str(out), "--teacher-hidden", "6", "--n-teachers", "2",
           "--teacher-epochs", "1", "--student-epochs", "1", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=env)


def test_reproduce_writes_table2_and_resumes(tau22_root, tmp_path):
    out = tmp_path / "run"
    first = _reproduce(tau22_root, out)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("results.json", "table2.md", "confusion_matrix.png", "device_accuracy.png"):
        assert (out / name).stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    models = [row["model"] for row in results["table2"]]
    assert models == ["Teacher1", "Teacher2", "Teacher ensemble", "Student w/o KD", "Student (KD)"]
    student = results["table2"][-1]
    assert 0 <= student["accuracy"] <= 1 and student["params"] > 0 and student["macs"] > 0
    devices = results["reports"]["Student (KD)"]["devices"]
    assert {"a", "b", "c", "s1", "s4"} <= set(devices)
    assert set(results["reports"]["Student (KD)"]["groups"]) == {"real", "seen", "unseen"}
    assert "Student (KD)" in first.stdout and "Log-loss" in first.stdout
    assert "per device" in first.stdout

    again = _reproduce(tau22_root, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already trained") == 4  # 2 teachers + 2 students loaded, not retrained
    assert json.loads((out / "results.json").read_text())["table2"] == results["table2"]
