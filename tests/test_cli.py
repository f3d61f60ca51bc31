"""The main job: ``skasc reproduce`` end to end on the generated replica."""

import json
import subprocess
import sys

import pytest
from skasc import cli

from _ctrl_c import CtrlCAt


DWSCNN_TEACHERS = ("--teacher", "dwscnn", "--teacher-hidden", "6", "--n-teachers", "2", "--teacher-epochs", "1")


def _reproduce(root, out, *extra, teachers=DWSCNN_TEACHERS):
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(out.parent), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "skasc.cli", "reproduce", "--data-root", str(root), "--schedule", "demo",
           "--out-dir", str(out), *teachers, "--student-epochs", "1", *extra]
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
    # the paper's student (Table 1), scored by the per-device report's overall accuracy
    assert (student["params"], student["macs"]) == (31_260, 29_591_778)
    assert student["accuracy"] == results["reports"]["Student (KD)"]["overall"]["accuracy"]
    devices = results["reports"]["Student (KD)"]["devices"]
    assert {"a", "b", "c", "s1", "s4"} <= set(devices)
    assert set(results["reports"]["Student (KD)"]["groups"]) == {"real", "seen", "unseen"}
    assert "Student (KD)" in first.stdout and "Log-loss" in first.stdout
    assert "per device" in first.stdout

    again = _reproduce(tau22_root, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already trained") == 4  # 2 teachers + 2 students loaded, not retrained
    assert json.loads((out / "results.json").read_text())["table2"] == results["table2"]


def test_default_run_trains_the_papers_student_and_says_what_is_scaled_down():
    from skasc import complexity_report
    from skasc.nn import DwsCNN
    from skasc.preprocessing import LogMel
    from skasc.reproduce import DEMO, PAPER, _scaled_down, replace_schedule

    # the paper's features (256 bands x 51 frames) and student
    assert DEMO.logmel == PAPER.logmel == {} and DEMO.spec_augment == PAPER.spec_augment
    assert LogMel().n_mels == 256 and DEMO.student_hidden == 18
    report = complexity_report(DwsCNN(hidden=DEMO.student_hidden, input_shape=(1, 256, 51)))
    assert (report.total_params, report.total_macs) == (31_260, 29_591_778)
    # the demo distils from mn04_as, its head fine-tuned, heard online; the paper keeps its teachers
    assert (DEMO.teacher, DEMO.pretrained_fine_tune, DEMO.teacher_outputs) == ("pretrained", "head", "online")
    assert (PAPER.teacher, PAPER.teacher_outputs, PAPER.teacher_step) == ("dwscnn", "cached", 1)
    assert _scaled_down(DEMO) == ("teacher: mn04_as pretrained on AudioSet, its head fine-tuned 10 epochs "
                                  "(paper: 4 DwsCNNs of hidden=256 trained 200 epochs); "
                                  "student_epochs 5 (paper: 600)")
    dwscnn = replace_schedule(DEMO, teacher="dwscnn")
    assert dwscnn.teacher_outputs == "cached"  # DwsCNN teachers: cached unless named
    assert replace_schedule(DEMO, teacher="dwscnn", teacher_outputs="online").teacher_outputs == "online"
    assert _scaled_down(dwscnn) == ("n_teachers 2 (paper: 4); teacher_hidden 20 (paper: 256); "
                                    "teacher_epochs 10 (paper: 200); student_epochs 5 (paper: 600)")
    assert _scaled_down(PAPER) == ""


def test_cli_passes_teacher_outputs_and_compile(monkeypatch, tmp_path):
    from skasc import cli

    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k))
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher-outputs", "online", "--compile"])
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o")])
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher", "dwscnn"])
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--schedule", "paper"])
    # the demo's pretrained teacher is heard online; DwsCNN teachers' outputs are cached by default
    assert [(c["schedule"].teacher_outputs, c["compile"]) for c in calls] == [
        ("online", True), ("online", "auto"), ("cached", "auto"), ("cached", "auto")]


def test_cli_teacher_step_reaches_the_schedule_and_is_refused_with_online_outputs(monkeypatch, tmp_path, capsys):
    from skasc.reproduce import DEMO

    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k))
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--schedule", "paper", "--teacher-step", "10"])
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher", "dwscnn"])
    assert [c["schedule"].teacher_step for c in calls] == [10, DEMO.teacher_step]
    # the demo's teacher runs on every batch: a step would change nothing, so it is refused
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: pytest.fail("reproduce must not run"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher-step", "10"])
    assert exc.value.code == 2
    assert "--teacher-step: only used with cached teacher outputs" in capsys.readouterr().err


def test_subset_and_the_dcase2024_recipe(tau22_root, tmp_path):
    from skasc.datasets import load_tau22

    out = tmp_path / "run"
    run = _reproduce(tau22_root, out, "--subset", "50", "--dcase2024",
                     "--ir-dir", str(tau22_root / "impulse_responses"))
    assert run.returncode == 0, run.stderr[-3000:]
    n50, n_eval = len(load_tau22(tau22_root, "train", fraction=50).X), len(load_tau22(tau22_root, "evaluate").X)
    assert f"{n50} training clips (the 50 % subset), {n_eval} evaluation clips" in run.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["schedule"]["subset"] == 50
    rows = results["dcase2024"]
    assert [r["model"] for r in rows] == [
        "Student (KD)", "+ Freq-MixStyle + DIR", "+ device-specific fine-tuning"]
    assert rows[0]["accuracy"] == results["reports"]["Student (KD)"]["overall"]["accuracy"]
    assert "DCASE 2024/2025 additions" in run.stdout and (out / "dcase2024.md").is_file()
    # the per-device models were trained and saved as finished
    assert len(list((out / "models").glob("student-kd-fms-dir-per-device-*.joblib"))) == 1


# -- issue 17: everything the command can check is checked before it trains or creates anything


def _usage_error(argv, tmp_path, capsys, monkeypatch):
    """Run the CLI expecting a usage error; return its one error line."""
    import pytest

    from skasc import cli

    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: pytest.fail("reproduce must not start"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("usage:"), err  # one usage line, one error line
    return err[1]


def test_cli_refuses_a_data_root_without_the_tau22_layout(tmp_path, capsys, monkeypatch):
    (tmp_path / "downloads").mkdir()
    out = tmp_path / "out"
    err = _usage_error(["--data-root", str(tmp_path / "downloads"), "--out-dir", str(out)],
                       tmp_path, capsys, monkeypatch)
    assert "argument --data-root" in err and "meta.csv not found" in err and "expected TAU22 layout" in err
    assert not out.exists()


def test_cli_refuses_a_split_file_with_no_clips(tau22_root, tmp_path, capsys, monkeypatch):
    import shutil

    root = tmp_path / "tau22"
    shutil.copytree(tau22_root, root, ignore=shutil.ignore_patterns("audio", "impulse_responses"))
    split = root / "evaluation_setup" / "fold1_evaluate.csv"
    split.write_text("filename\tscene_label\n")
    err = _usage_error(["--data-root", str(root), "--out-dir", str(tmp_path / "out")], tmp_path, capsys,
                       monkeypatch)
    assert "argument --data-root" in err and "fold1_evaluate.csv lists no clips" in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_out_dir_under_a_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    err = _usage_error(["--out-dir", str(tmp_path / "notes.txt" / "run")], tmp_path, capsys, monkeypatch)
    assert "argument --out-dir" in err and "notes.txt' is a file, not a folder" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_refuses_an_empty_ir_dir_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / "irs").mkdir()
    out = tmp_path / "out"
    err = _usage_error(["--dcase2024", "--ir-dir", str(tmp_path / "irs"), "--out-dir", str(out)],
                       tmp_path, capsys, monkeypatch)
    assert "argument --ir-dir" in err and "holds no .wav file" in err
    err = _usage_error(["--ir-dir", str(tmp_path / "irs"), "--out-dir", str(out)], tmp_path, capsys, monkeypatch)
    assert "argument --ir-dir" in err and "only by --dcase2024" in err  # it would be ignored
    assert not out.exists()


def test_reproduce_itself_checks_before_creating_anything(tmp_path):
    import pytest

    from skasc.reproduce import reproduce

    (tmp_path / "downloads").mkdir()
    with pytest.raises(FileNotFoundError, match="meta.csv not found"):
        reproduce(tmp_path / "downloads", tmp_path / "out", verbose=0)
    (tmp_path / "irs").mkdir()
    with pytest.raises(ValueError, match="holds no .wav file"):
        reproduce(None, tmp_path / "out", dcase2024=True, ir_dir=tmp_path / "irs", verbose=0)
    assert not (tmp_path / "out").exists()


def test_reproduce_with_the_pretrained_teacher(tau22_root, tmp_path):
    out = tmp_path / "run"
    run = _reproduce(tau22_root, out, "--teacher", "pretrained", "--pretrained-epochs", "1", teachers=())
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    rows = {row["model"]: row for row in results["table2"]}
    assert list(rows) == ["Teacher mn04_as", "Student w/o KD", "Student (KD)"]
    # the fine-tuned mn04 at 1 s of audio (128 x 100), its new 10-class head counted
    assert rows["Teacher mn04_as"]["params"] == 983_599 - 527 * 513 + 10 * 513
    assert 10e6 < rows["Teacher mn04_as"]["macs"] < 15e6
    assert "teacher: mn04_as pretrained on AudioSet, its head fine-tuned 1 epochs" in run.stdout
    assert not list((out / "models").glob("teacher1-*"))  # no DwsCNN teachers trained


def test_cli_pretrained_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    from skasc import cli

    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: pytest.fail("reproduce must not run"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher", "dwscnn",
                  "--pretrained-model", "mn10_as"])
    assert exc.value.code == 2
    assert "--pretrained-model: only used with --teacher pretrained" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--schedule", "paper",
                  "--pretrained-fine-tune", "head"])
    assert exc.value.code == 2
    assert "--pretrained-fine-tune: only used with --teacher pretrained" in capsys.readouterr().err
    # the demo's teacher is pretrained: DwsCNN teacher flags would be ignored, so they are refused
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher-epochs", "3"])
    assert exc.value.code == 2
    assert "--teacher-epochs: only used with --teacher dwscnn" in capsys.readouterr().err
    # a model that is neither shipped nor cached, and a release that cannot be reached
    monkeypatch.setenv("SKASC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SKASC_WEIGHTS_URL", (tmp_path / "no-release").as_uri())
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--teacher", "pretrained",
                  "--pretrained-model", "mn10_as"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --pretrained-model: could not download" in err and "mn10_as_mAP_471.pt" in err
    assert not (tmp_path / "o").exists()


# -- flags checked before any work; Ctrl-C exits 130 and resumes ------------------------


@pytest.mark.parametrize("flags, flag", [
    (["--device", "gpu0"], "--device"),
    (["--teacher-epochs", "0"], "--teacher-epochs"),
    (["--student-epochs", "-3"], "--student-epochs"),
    (["--n-teachers", "0"], "--n-teachers"),
    (["--teacher-hidden", "0"], "--teacher-hidden"),
    (["--n-jobs", "0"], "--n-jobs"),
    (["--seed", "-1"], "--seed"),
    (["--teacher-epochs", "two"], "--teacher-epochs"),
    (["--data-root", "/nonexistent/tau22"], "--data-root"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "fast"], "--lr"),
])
def test_cli_usage_errors_name_the_flag_and_create_nothing(flags, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: pytest.fail("reproduce must not start"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(out), *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("usage:"), err  # one usage line, one error line
    assert f"argument {flag}" in err[1] and "Traceback" not in err[1]
    assert not out.exists()


def test_cli_out_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("x")
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(out)])
    assert exc.value.code == 2 and "--out-dir" in capsys.readouterr().err


def test_cli_passes_overwrite_through(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k))
    assert cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--overwrite"]) == 0
    assert cli.main(["reproduce", "--out-dir", str(tmp_path / "o")]) == 0
    assert [c["overwrite"] for c in calls] == [True, False]


def test_cli_tells_how_to_overwrite_a_foreign_replica_folder(tmp_path, capsys):
    (tmp_path / "out" / "tau22-replica").mkdir(parents=True)
    (tmp_path / "out" / "tau22-replica" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--out-dir", str(tmp_path / "out"), "-q"])
    assert exc.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "tau22-replica" / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def tiny_tau22(tmp_path_factory):
    from skasc.datasets import make_tau22

    return make_tau22(tmp_path_factory.mktemp("tiny-tau22"), n_cities=1, n_locations=2, n_segments=1,
                      devices=("a", "b", "s4"), random_state=0)


def test_ctrl_c_during_reproduce_exits_130_saves_nothing_and_rerun_resumes(
        tiny_tau22, tmp_path, monkeypatch, capsys, trained_epochs):
    import skasc.reproduce as rep

    out = tmp_path / "run"
    argv = ["reproduce", "--data-root", str(tiny_tau22), "--schedule", "demo", "--out-dir", str(out),
            "--teacher", "dwscnn", "--teacher-hidden", "2", "--n-teachers", "2", "--teacher-epochs", "3", "--student-epochs", "2",
            "-q"]
    real = rep.DwsCNNClassifier

    def teacher2_interrupted(**kw):  # Ctrl-C at the start of teacher 2's third epoch
        if kw["random_state"] == 1 and kw["hidden"] == 2:
            kw["callbacks"] = [CtrlCAt(3)]
        return real(**kw)

    monkeypatch.setattr(rep, "DwsCNNClassifier", teacher2_interrupted)
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "rerun the same command" in err
    models = sorted(p.name.split("-")[0] for p in (out / "models").glob("*.joblib"))
    assert models == ["teacher1"]  # teacher 2 is not saved as finished
    assert trained_epochs == [1, 2, 3, 1, 2, 3]
    assert not (out / "results.json").exists()

    monkeypatch.setattr(rep, "DwsCNNClassifier", real)
    trained_epochs.clear()
    assert cli.main(argv) == 0
    # teacher 1 loaded, teacher 2 resumed at epoch 3, then both students from scratch
    assert trained_epochs == [3, 1, 2, 1, 2]
    assert (out / "results.json").exists()


def test_cli_passes_disk_features_through(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k))
    for flags in ([], ["--disk-features"], ["--disk-features", "float16"]):
        assert cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), *flags]) == 0
    assert [c["store_dtype"] for c in calls] == [None, "float32", "float16"]


def test_reproduce_with_the_features_on_disk(tiny_tau22, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["reproduce", "--data-root", str(tiny_tau22), "--schedule", "demo", "--out-dir", str(out),
            "--teacher", "dwscnn", "--teacher-hidden", "2", "--n-teachers", "2", "--teacher-epochs", "1", "--student-epochs", "1",
            "--disk-features", "float16"]
    assert cli.main(argv) == 0
    assert "float16 disk store" in capsys.readouterr().out
    stores = list((out / "feature-store").glob("*/index.json"))
    assert len(stores) == 2  # the training view and the evaluate clips
    assert not (out / "feature-cache").exists()
    results = json.loads((out / "results.json").read_text())
    assert [row["model"] for row in results["table2"]][-1] == "Student (KD)"


def test_cli_lr_reaches_the_schedule(monkeypatch, tmp_path):
    from skasc.reproduce import PAPER

    calls = []
    monkeypatch.setattr(cli, "reproduce", lambda *a, **k: calls.append(k))
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--schedule", "paper", "--lr", "0.005"])
    cli.main(["reproduce", "--out-dir", str(tmp_path / "o"), "--schedule", "paper"])
    assert [c["schedule"].lr for c in calls] == [0.005, PAPER.lr]


def test_training_that_fails_ends_the_command_with_one_line_naming_lr(tiny_tau22, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["reproduce", "--data-root", str(tiny_tau22), "--schedule", "demo", "--out-dir", str(out),
            "--teacher", "dwscnn", "--teacher-hidden", "2", "--n-teachers", "1", "--teacher-epochs", "2",
            "--student-epochs", "1", "--lr", "1e30", "-q"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skasc: training loss became non-finite"), err
    assert err[0].endswith("(on the command line: --lr sets it for the DwsCNN teachers and the students)")
    assert not list((out / "models").glob("*.joblib"))  # no model saved as trained


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.01", True])
def test_schedule_refuses_an_lr_that_is_not_a_positive_number(lr):
    from skasc.reproduce import PAPER, replace_schedule

    with pytest.raises(ValueError, match=r"Schedule\.lr must be a finite number > 0"):
        replace_schedule(PAPER, lr=lr)
