"""The scripts in examples/ run end to end (with --fast) and print what they promise.

Each example runs in its own subprocess, as a user would run it, on one tiny
generated TAU22 replica shared by the tests (the same replica the examples
generate themselves with --fast), with a private --workdir for its feature
cache.  Together they take about 30 s on 2 CPU cores.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
TIMEOUT = 180  # generous: the 2 CI cores may be shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """The replica the examples make with --fast (2 cities, 1 location, 1 segment)."""
    from skasc.datasets import make_tau22

    return make_tau22(tmp_path_factory.mktemp("tau22-tiny"), n_cities=2, n_locations=1, n_segments=1,
                      devices=("a", "b", "s1", "s4"), random_state=0)


def run_example(name, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--fast", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"{name} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_examples_found():
    names = {p.name for p in SCRIPTS}
    assert {"plot_quickstart_pipeline.py", "distillation_from_ensemble.py",
            "grid_search_hidden_budget.py", "load_real_tau22.py", "your_own_audio.py"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_header(script):
    """A module docstring with a title, what it shows, how to run; a --fast flag."""
    source = script.read_text()
    doc = ast.get_docstring(ast.parse(source))
    assert doc, f"{script.name} has no module docstring"
    lines = doc.splitlines()
    assert lines[0].strip() and set(lines[1].strip()) == {"="}, "title underlined with ="
    assert "What it shows" in doc and "How to run" in doc
    assert f"python examples/{script.name}" in doc
    assert '"--fast"' in source
    assert 'if __name__ == "__main__":' in source


def test_quickstart_pipeline(tiny_root, tmp_path):
    out = run_example("plot_quickstart_pipeline.py", "--data-root", tiny_root, "--workdir", tmp_path, cwd=tmp_path)
    assert re.search(r"^accuracy \(pipe\.score\): 0\.\d{3}$", out, re.M), out
    assert re.search(r"^class-wise accuracy: 0\.\d{3} \(chance 0\.100\)$", out, re.M), out
    assert re.search(r"^accuracy \(%\)", out, re.M), out  # the per-device table
    assert "Complexity of DwsCNNClassifier (DwsCNN), input (C, F, T) = (1, 32, 26)" in out
    assert re.search(r"^  MACs .* PASS$", out, re.M), out
    assert list(tmp_path.iterdir()) != []  # its feature cache went to --workdir


def test_distillation_from_ensemble(tiny_root, tmp_path):
    out = run_example("distillation_from_ensemble.py", "--data-root", tiny_root, "--workdir", tmp_path, cwd=tmp_path)
    accuracy = {}
    for name in ("teacher 1", "teacher 2", "teacher ensemble (fused)", "student without KD", "student with KD"):
        m = re.search(rf"^{re.escape(name)} +([\d,]+) +([\d,]+) +([\d.]+) %$", out, re.M)
        assert m, f"no line for {name!r}:\n{out}"
        accuracy[name] = float(m.group(3))
    params = {name: int(re.search(rf"^{re.escape(name)} +([\d,]+)", out, re.M).group(1).replace(",", ""))
              for name in accuracy}
    assert params["teacher ensemble (fused)"] == params["teacher 1"] + params["teacher 2"]
    assert params["student with KD"] == params["student without KD"] < params["teacher 1"]
    # the deployed pipeline (paths in) predicts exactly what the student predicts on the features
    m = re.search(r"^deployed pipeline \(file paths in\): class-wise accuracy ([\d.]+) %$", out, re.M)
    assert m and float(m.group(1)) == accuracy["student with KD"], out
    assert "augmentations=CropAugmentation, MaskAugmentation" in out  # training view
    assert "augmentations=none" in out  # test view


def test_grid_search_hidden_budget(tiny_root, tmp_path):
    out = run_example("grid_search_hidden_budget.py", "--data-root", tiny_root, "--workdir", tmp_path, cwd=tmp_path)
    rows = re.findall(r"^ +(\d+) +([\d,]+) +([\d,]+) +([\d,]+)  (fits|over) +([\d.]+) % \+- +[\d.]+(.*)$",
                      out, re.M)
    assert [int(r[0]) for r in rows] == [6, 18, 24], out
    budget = {int(r[0]): r[4] for r in rows}
    assert budget == {6: "fits", 18: "fits", 24: "over"}
    # hidden=18 at 1x256x51: the paper's numbers
    row18 = next(r for r in rows if r[0] == "18")
    assert row18[1:4] == ("31,260", "125,040", "29,591,778")
    chosen = [r for r in rows if "<- chosen" in r[6]]
    assert len(chosen) == 1 and chosen[0][4] == "fits", out
    # the chosen one has the best score among those that fit
    scores = {int(r[0]): float(r[5]) for r in rows}
    assert scores[int(chosen[0][0])] == max(s for h, s in scores.items() if budget[h] == "fits")
    assert re.search(rf"^chosen: hidden={chosen[0][0]}; evaluate split class-wise accuracy [\d.]+ %$", out, re.M)


def test_budget_refit_callable():
    """The refit rule itself, on hand-made cv_results (no training)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import grid_search_hidden_budget as ex
    finally:
        sys.path.remove(str(EXAMPLES))
    params = [{"clf__hidden": h} for h in (8, 18, 19, 24)]
    assert ex.best_within_budget({"params": params, "mean_test_score": [0.4, 0.5, 0.9, 0.8]}) == 1
    assert ex.best_within_budget({"params": params, "mean_test_score": [0.6, 0.5, 0.9, 0.8]}) == 0
    assert ex.best_within_budget({"params": params, "mean_test_score": [0.4, float("nan"), 0.9, 0.8]}) == 0
    with pytest.raises(ValueError, match="budget"):
        ex.best_within_budget({"params": params[2:], "mean_test_score": [0.9, 0.8]})
    cx = ex.candidate_complexity({"clf__hidden": 18})
    assert (cx.total_params, cx.total_macs) == (31260, 29591778)
    # the same rule as the library's BudgetRefit
    from skasc.model_selection import BudgetRefit

    for scores in ([0.4, 0.5, 0.9, 0.8], [0.6, 0.5, 0.9, 0.8], [0.4, 0.45, 0.3, 0.8]):
        cv_results = {"params": params, "mean_test_score": scores}
        assert ex.best_within_budget(cv_results) == BudgetRefit()(cv_results)


def test_load_real_tau22_with_data_root(tiny_root, tmp_path):
    out = run_example("load_real_tau22.py", "--data-root", tiny_root, cwd=tmp_path)
    assert "no --data-root" not in out
    for field in ("X", "y", "filename", "device", "city", "identifier", "recording", "snippet", "target_names"):
        assert re.search(rf"^  {field} +", out, re.M), field
    counts = re.search(r"^  evaluate +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$",
                       out, re.M)
    assert counts, out
    a, b, c, s1, s2, s3, s4, s5, s6, total = map(int, counts.groups())
    assert (a, b, s1, s4, total) == (100, 100, 100, 100, 400)
    assert re.search(r"^  train +100 +100 +0 +100 +0 +0 +0 +0 +0 +300$", out, re.M), out
    assert "300 rows (still one per clip), 30 recordings" in out
    assert "441,000 samples (10 s)" in out


def test_load_real_tau22_generates_replica(tmp_path):
    out = run_example("load_real_tau22.py", "--workdir", tmp_path, cwd=tmp_path)
    assert "no --data-root: using the generated replica" in out
    assert (tmp_path / "tau22-replica-tiny" / "meta.csv").is_file()
    assert "clips per device:" in out


def test_your_own_audio(tmp_path):
    out = run_example("your_own_audio.py", "--workdir", tmp_path, cwd=tmp_path)
    m = re.search(r"^data: (\d+) clips of 1 s from 24 files \(3 classes\); (\d+) files not at 44100 Hz;"
                  r" (\d+) clips zero-padded$", out, re.M)
    assert m, out
    assert int(m.group(2)) == 15 and int(m.group(3)) >= 3  # the 16 and 48 kHz files; short files, tails
    assert re.search(r"^  a row: '\w+/\w+_\d+\.wav#t=1,2'  \(file '\w+/\w+_\d+\.wav', position 1, stored at"
                     r" \d+ Hz\)$", out, re.M), out
    assert re.search(r"^split by file: \d+ train files \(\d+ clips\), \d+ test files \(\d+ clips\), 0 in both$",
                     out, re.M), out
    widths = re.findall(r"^  hidden=(\d+) +CV class-wise accuracy +[\d.]+ %$", out, re.M)
    assert widths == ["4", "8"], out
    assert re.search(r"^chosen: hidden=(4|8)$", out, re.M), out
    assert re.search(r"^LogMel resampled \d+ training files \(from \[16000, 48000\] Hz\) to 44100 Hz$", out, re.M)
    accuracy = {}
    for name in ("teacher (grid search)", "student (distilled)"):
        m = re.search(rf"^{re.escape(name)} +([\d,]+) +([\d.]+) % +([\d.]+) %$", out, re.M)
        assert m, f"no line for {name!r}:\n{out}"
        accuracy[name] = (float(m.group(2)), float(m.group(3)))
    # distinct synthetic classes: both levels well above chance (33.3 %)
    assert all(clip > 50 and file > 50 for clip, file in accuracy.values()), accuracy
    lines = re.findall(r"^  \w+/\w+_\d+\.wav +(\d+) clips -> (\w+) +\(p=[\d.]+, true (\w+)\)$", out, re.M)
    assert len(lines) == 5, out
