"""Command line: ``skasc reproduce`` runs the paper end to end."""

from __future__ import annotations

import argparse
import errno
import math
import sys
from pathlib import Path

from ._training import check_device
from ._weights import CHECKPOINTS, resolve_weights
from .exceptions import TrainingCollapsedError
from .reproduce import DEMO, PAPER, check_inputs, replace_schedule, reproduce

INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)


# argparse `type=` functions: an ArgumentTypeError becomes a usage error
# naming the flag, before any work starts


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_at_least(low):
    def parse(text):
        value = _integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _n_jobs(text):
    value = _integer(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 workers cannot run anything; use 1, 2, ... or -1 for all CPUs")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _device(text):
    try:
        check_device(text, name="device")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _folder(text):
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text!r}")
    return text


def _parser():
    parser = argparse.ArgumentParser(prog="skasc", description=__doc__, usage="skasc {reproduce} [options]")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "reproduce",
        prog="skasc reproduce",
        # one usage line on errors; -h lists every option
        usage="skasc reproduce [-h] [options]",
        help="features -> four teachers -> fused ensemble -> distilled student, plus the "
             "student without distillation; prints Table 2 and per-device accuracy",
    )
    positive = _int_at_least(1)
    rep.add_argument("--data-root", type=_folder,
                     help="TAU22 development folder (default: generated replica, demo schedule)")
    rep.add_argument("--out-dir", default="skasc-output", help="models, cache and results (default: %(default)s)")
    rep.add_argument("--overwrite", action="store_true",
                     help="rewrite a generated replica in OUT_DIR/tau22-replica that was made with "
                          "other parameters or is incomplete (without --data-root)")
    rep.add_argument("--schedule", choices=["paper", "demo"],
                     help="default: paper with --data-root, demo without")
    rep.add_argument("--device", type=_device, default="cpu",
                     help="torch device, e.g. cuda (default: %(default)s)")
    rep.add_argument("--teacher-epochs", type=positive)
    rep.add_argument("--student-epochs", type=positive)
    rep.add_argument("--lr", type=_positive_float,
                     help="Adam's initial learning rate for the DwsCNN teachers and the students "
                          "(default: 0.01, the paper's)")
    rep.add_argument("--teacher-hidden", type=positive)
    rep.add_argument("--n-teachers", type=positive)
    rep.add_argument("--teacher", choices=["dwscnn", "pretrained"],
                     help="the distilled student's teacher: the paper's DwsCNN ensemble trained from "
                          "scratch (dwscnn, the paper schedule's default) or an AudioSet-pretrained "
                          "EfficientAT MobileNet fine-tuned on the data (pretrained, the demo's default)")
    rep.add_argument("--pretrained-model", choices=sorted(CHECKPOINTS),
                     help="with --teacher pretrained: the EfficientAT model (default: mn04_as, "
                          "shipped with skasc; the others are downloaded once into the cache)")
    rep.add_argument("--pretrained-epochs", type=positive,
                     help="with --teacher pretrained: fine-tuning epochs (default: 10)")
    rep.add_argument("--pretrained-fine-tune", choices=["all", "head"],
                     help="with --teacher pretrained: fine-tune the whole network (all, the paper "
                          "schedule's default) or only the new head on the pretrained body (head, the "
                          "demo's default)")
    rep.add_argument("--teacher-outputs", choices=["cached", "online"],
                     help="the distilled student learns from the teachers' outputs computed once "
                          "(cached: the default for DwsCNN teachers) or from the teachers run on every "
                          "batch (online: the demo's pretrained teacher, which then hears the mixup "
                          "mixtures)")
    rep.add_argument("--teacher-step", type=positive,
                     help="with cached teacher outputs: compute them at every Nth crop position (frames; "
                          "default: 1, every position, the paper's; the demo's DwsCNN teachers: 10); "
                          "a larger step makes that pass N times shorter on a large data set")
    rep.add_argument("--compile", action="store_true",
                     help="train the students with torch.compile whatever the run's length (about a "
                          "minute to compile; faster epochs after); by default it is decided from the "
                          "run's size (compile='auto')")
    rep.add_argument("--subset", type=int, choices=[5, 10, 25, 50, 100],
                     help="train on the DCASE 2024 nested subset of this percentage of the train "
                          "split (evaluation: the full evaluate split; default: 100)")
    rep.add_argument("--dcase2024", action="store_true",
                     help="also train the DCASE 2024/2025 additions on the distilled student "
                          "(Freq-MixStyle, device impulse responses, per-device fine-tuning) and "
                          "print them as a second table")
    rep.add_argument("--ir-dir", type=_folder,
                     help="impulse-response WAVs for --dcase2024 (default: the replica's, seen "
                          "devices only; none on real data)")
    rep.add_argument("--disk-features", nargs="?", const="float32", choices=["float32", "float16"],
                     dest="store_dtype", default=None, metavar="{float32,float16}",
                     help="write the features to a disk store under --out-dir and read them batch by "
                          "batch (bounded memory: the full development set); optionally float16")
    rep.add_argument("--seed", type=_int_at_least(0), default=0)
    rep.add_argument("--n-jobs", type=_n_jobs, default=None, help="feature-extraction workers (-1: all CPUs)")
    rep.add_argument("-q", "--quiet", action="store_true")
    rep.add_argument("-v", "--verbose", action="store_true", help="also print every epoch")
    return parser, rep


def main(argv=None):
    """Run the command line; returns the exit code (2: usage error, 130: Ctrl-C)."""
    parser, rep = _parser()
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        base = {"paper": PAPER, "demo": DEMO}.get(args.schedule) or (PAPER if args.data_root else DEMO)
        schedule = replace_schedule(base, teacher_epochs=args.teacher_epochs,
                                    student_epochs=args.student_epochs,
                                    teacher_hidden=args.teacher_hidden, n_teachers=args.n_teachers,
                                    teacher_outputs=args.teacher_outputs, subset=args.subset,
                                    teacher=args.teacher, pretrained_model=args.pretrained_model,
                                    pretrained_epochs=args.pretrained_epochs,
                                    pretrained_fine_tune=args.pretrained_fine_tune,
                                    teacher_step=args.teacher_step, lr=args.lr)
        _check_before_work(rep, args, schedule)
        verbose = 0 if args.quiet else (2 if args.verbose else 1)
        try:
            reproduce(args.data_root, args.out_dir, schedule=schedule, device=args.device,
                      random_state=args.seed, n_jobs=args.n_jobs, verbose=verbose,
                      overwrite=args.overwrite, compile=True if args.compile else "auto",
                      dcase2024=args.dcase2024,
                      ir_dir=args.ir_dir, store_dtype=args.store_dtype)
        except KeyboardInterrupt:
            print("\nskasc: interrupted; rerun the same command to resume from the last finished epoch",
                  file=sys.stderr, flush=True)
            return INTERRUPTED
        except (TrainingCollapsedError, FloatingPointError) as exc:
            # training failed as a whole (finished epochs stay checkpointed):
            # the message says where and what to change
            print(f"skasc: {exc} (on the command line: --lr sets it for the DwsCNN teachers and the "
                  "students)", file=sys.stderr, flush=True)
            return 1
        except FileExistsError as exc:
            if "overwrite" not in str(exc):
                raise
            # make_tau22 refusing to replace a folder: say how on the command line
            rep.error(f"{exc} (on the command line: --overwrite)")
        except OSError as exc:
            if not _is_write_failure(exc):
                raise
            # a full disk while saving: one line naming the file (see skasc._files)
            print(f"skasc: {exc}", file=sys.stderr, flush=True)
            return 1
    return 0


#: how skasc._files.write_error begins its message
_WRITE_FAILURE = "cannot save "


def _is_write_failure(exc):
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or str(exc).startswith(_WRITE_FAILURE)


def _check_before_work(rep, args, schedule):
    """Usage errors for everything reproduce would refuse before training:
    the output folder, the data root's layout and split files, the impulse
    responses.  Nothing is created here."""
    checks = [("--out-dir", lambda: check_inputs(None, args.out_dir))]
    if args.data_root is not None:
        checks.append(("--data-root", lambda: check_inputs(
            args.data_root, args.out_dir, subset=schedule.subset, dcase2024=args.dcase2024)))
    if args.ir_dir is not None:
        if not args.dcase2024:
            rep.error("argument --ir-dir: impulse responses are used only by --dcase2024; add it or "
                      "leave --ir-dir out")
        checks.append(("--ir-dir", lambda: check_inputs(None, args.out_dir, dcase2024=True,
                                                         ir_dir=args.ir_dir)))
    if args.teacher_step is not None and schedule.teacher_outputs != "cached":
        rep.error("argument --teacher-step: only used with cached teacher outputs (the teacher here "
                  "runs on every batch: --teacher-outputs online)")
    if schedule.teacher != "pretrained":
        for flag in ("pretrained_model", "pretrained_epochs", "pretrained_fine_tune"):
            if getattr(args, flag) is not None:
                rep.error(f"argument --{flag.replace('_', '-')}: only used with --teacher pretrained")
    else:  # the checkpoint is there (shipped, cached or downloaded now) and intact
        for flag in ("teacher_epochs", "teacher_hidden", "n_teachers"):
            if getattr(args, flag) is not None:
                rep.error(f"argument --{flag.replace('_', '-')}: only used with --teacher dwscnn "
                          f"(the {schedule.name} schedule's teacher here is pretrained: add "
                          f"--teacher dwscnn to train DwsCNN teachers)")
        checks.append(("--pretrained-model", lambda: resolve_weights(schedule.pretrained_model)))
    for flag, check in checks:
        try:
            check()
        except (OSError, ValueError) as exc:
            rep.error(f"argument {flag}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
