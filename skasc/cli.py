"""Command line: ``skasc reproduce`` runs the paper end to end."""

from __future__ import annotations

import argparse
import sys

from .reproduce import DEMO, PAPER, replace_schedule, reproduce


def _parser():
    parser = argparse.ArgumentParser(prog="skasc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "reproduce",
        help="features -> four teachers -> fused ensemble -> distilled student, plus the "
             "student without distillation; prints Table 2 and per-device accuracy",
    )
    rep.add_argument("--data-root", help="TAU22 development folder (default: generated replica, demo schedule)")
    rep.add_argument("--out-dir", default="skasc-output", help="models, cache and results (default: %(default)s)")
    rep.add_argument("--schedule", choices=["paper", "demo"],
                     help="default: paper with --data-root, demo without")
    rep.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: %(default)s)")
    rep.add_argument("--teacher-epochs", type=int)
    rep.add_argument("--student-epochs", type=int)
    rep.add_argument("--teacher-hidden", type=int)
    rep.add_argument("--n-teachers", type=int)
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--n-jobs", type=int, default=None, help="feature-extraction workers")
    rep.add_argument("-q", "--quiet", action="store_true")
    rep.add_argument("-v", "--verbose", action="store_true", help="also print every epoch")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "reproduce":
        base = {"paper": PAPER, "demo": DEMO}.get(args.schedule) or (PAPER if args.data_root else DEMO)
        schedule = replace_schedule(base, teacher_epochs=args.teacher_epochs,
                                    student_epochs=args.student_epochs,
                                    teacher_hidden=args.teacher_hidden, n_teachers=args.n_teachers)
        verbose = 0 if args.quiet else (2 if args.verbose else 1)
        reproduce(args.data_root, args.out_dir, schedule=schedule, device=args.device,
                  random_state=args.seed, n_jobs=args.n_jobs, verbose=verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
