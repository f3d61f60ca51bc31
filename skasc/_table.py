"""The one table renderer of skasc: aligned plain text or Markdown.

Used by the complexity report, the metrics report, ``skasc reproduce`` and
the benchmark scripts, so that every table printed by the project looks the
same and is written in one place.
"""

from __future__ import annotations

__all__ = ["format_table"]


def format_table(header, rows, align=None, *, markdown=False, footer=()):
    """Render ``rows`` under ``header`` as an aligned text or Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : iterable of sequences
        Table body; cells are converted with ``str``.
    align : sequence of {"l", "r"}, default=None
        Alignment per column; None: the first column left, the rest right.
    markdown : bool, default=False
        Markdown (``| a | b |`` with ``---:`` for right-aligned columns)
        instead of plain text.
    footer : iterable of sequences, default=()
        Rows set off from the body by a rule (e.g. a total line); in
        Markdown they follow the body directly.

    Returns
    -------
    str

    Examples
    --------
    >>> from skasc._table import format_table
    >>> print(format_table(["model", "acc"], [["student", "46.1"], ["teacher", "48.6"]]))
    model     acc
    -------  ----
    student  46.1
    teacher  48.6
    >>> print(format_table(["model", "acc"], [["student", "46.1"]], markdown=True))
    | model | acc |
    | --- | ---: |
    | student | 46.1 |
    """
    header = [str(c) for c in header]
    align = list(align) if align is not None else ["l"] + ["r"] * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} entries for {len(header)} columns")
    body = [[str(c) for c in r] for r in rows]
    foot = [[str(c) for c in r] for r in footer]
    if markdown:
        sep = ["---" if a == "l" else "---:" for a in align]
        return "\n".join("| " + " | ".join(r) + " |" for r in [header, sep, *body, *foot])
    widths = [max(len(r[j]) for r in [header, *body, *foot]) for j in range(len(header))]

    def line(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(r, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule, *map(line, body)]
    if foot:
        lines += [rule, *map(line, foot)]
    return "\n".join(lines)
