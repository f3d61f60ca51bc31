"""Reproduce Table 1 of the seed paper (DCASE 2023 Task 1 depthwise-separable CNN).

Builds :class:`skasc.nn.DwsCNN` at ``hidden=18`` on a 1x256x51 log-mel input,
counts it with :func:`skasc.complexity.complexity_report` (torchinfo, as the
DCASE tool counts) and compares every row with the paper: parameters and
output shape per layer, the 31.26 K total, the "29.6 MMAC" and the teacher
size (2,318,678 parameters at ``hidden=256``).

Usage::

    python benchmarks/bench_table1.py [--markdown] [--children]

Exits with status 1 if any figure differs from the paper.
"""

from __future__ import annotations

import argparse
import sys
import time

from skasc._table import format_table
from skasc.complexity import complexity_report
from skasc.nn import DwsCNN

INPUT_SHAPE = (1, 256, 51)

# Table 1 of the paper: (part, architecture, parameters or None for "-", output shape).
PAPER_TABLE1 = [
    ("Input", "Conv", 900, (18, 256, 51)),
    ("DW1", "DwBlock", 1044, (18, 256, 51)),
    ("", "MaxPool2d", None, (18, 51, 10)),
    ("DW2", "Conv", 8118, (18, 51, 10)),
    ("", "DwBlock", 1044, (18, 51, 10)),
    ("DW3", "DwBlock", 1044, (18, 51, 10)),
    ("", "MaxPool2d", None, (18, 5, 2)),
    ("Output", "Flatten", None, (180,)),
    ("", "Linear", 18100, (100,)),
    ("", "Linear", 1010, (10,)),
]
PAPER_TOTAL_PARAMS = 31_260  # "31.26K"
PAPER_MMAC = 29.6  # "29.6 MMAC"
PAPER_TEACHER_PARAMS = 2_318_678  # Table 2, hidden=256

OK, BAD = "\u2713", "\u2717"


def _shape(shape):
    return str(shape[0]) if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="also print the report as Markdown")
    parser.add_argument("--children", action="store_true", help="list layers inside DwBlocks")
    args = parser.parse_args(argv)

    failures = 0

    def check(ok):
        nonlocal failures
        failures += not ok
        return OK if ok else BAD

    t0 = time.perf_counter()
    student = DwsCNN(hidden=18, input_shape=INPUT_SHAPE)
    report = complexity_report(student)
    elapsed = time.perf_counter() - t0

    # Table 1 rows; the activation between the Linear layers is not in the paper.
    ours = [r for r in report.rows if r.name != "act"]
    print("Table 1 reproduction, hidden=18, input 1x256x51")
    rows = []
    for (part, arch, p_params, p_shape), row in zip(PAPER_TABLE1, ours):
        rows.append([
            part, arch, f"{row.name} ({row.type})",
            "-" if p_params is None else f"{p_params:,}",
            "-" if not row.params else f"{row.params:,}", check(row.params == (p_params or 0)),
            _shape(p_shape), _shape(row.output_shape), check(row.output_shape == p_shape),
            f"{row.macs:,}" if row.macs else "-",
        ])
    check(len(ours) == len(PAPER_TABLE1))
    print(format_table(
        ["part", "paper layer", "ours", "paper params", "ours", "", "paper shape", "ours", "", "MACs"],
        rows, ["l", "l", "l", "r", "r", "l", "l", "l", "l", "r"]))
    print()
    print(
        f"Total parameters: paper {PAPER_TOTAL_PARAMS:,}, ours {report.total_params:,} "
        f"{check(report.total_params == PAPER_TOTAL_PARAMS)}"
    )
    mmac = report.total_macs / 1e6
    print(
        f"MACs: paper {PAPER_MMAC} M, ours {report.total_macs:,} = {mmac:.2f} M "
        f"(rounds to {mmac:.1f} M) {check(round(mmac, 1) == PAPER_MMAC)}"
    )
    print(
        f"DCASE 2023 limits: MACs {report.total_macs:,} / {report.mac_limit:,} "
        f"{'PASS' if report.within_mac_limit else 'FAIL'}; parameter memory "
        f"{report.param_bytes['float32']:,} B float32 / {report.param_limit_bytes:,} B "
        f"{'PASS' if report.within_param_limit else 'FAIL'} "
        f"{check(report.fits_limits('float32'))}"
    )

    teacher = complexity_report(DwsCNN(hidden=256, input_shape=INPUT_SHAPE))
    print(
        f"Teacher (hidden=256): paper {PAPER_TEACHER_PARAMS:,} parameters, ours "
        f"{teacher.total_params:,} {check(teacher.total_params == PAPER_TEACHER_PARAMS)}; "
        f"MACs {teacher.total_macs:,} ({teacher.total_macs / 1e9:.2f} G)"
    )

    print(f"(counting the student took {elapsed * 1e3:.0f} ms)")
    print()
    print(report.to_string(show_children=args.children))
    if args.markdown:
        print()
        print(report.to_markdown(show_children=args.children))

    print()
    print("all figures match the paper" if not failures else f"{failures} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
