"""Text and Markdown rendering of a :class:`skasc.complexity.ComplexityReport`.

The report's :meth:`~skasc.complexity.ComplexityReport.to_string` and
:meth:`~skasc.complexity.ComplexityReport.to_markdown` (the Table-1-like
layer table, the totals and the limit verdicts) are written here, on top of
the one table renderer :func:`skasc._table.format_table`; the counting and
the limits stay in :mod:`skasc.complexity`.
"""

from __future__ import annotations

from ._table import format_table

__all__ = ["render_text", "render_markdown"]

#: Columns of the Table-1-like report (text and Markdown).
_TABLE_HEADER = ("Layer", "Type", "Output shape", "Params", "MACs")
_TABLE_ALIGN = ("l", "l", "l", "r", "r")


def _fmt_int(n):
    return f"{n:,}" if n else "-"


def _fmt_shape(shape):
    if not shape:  # a container that is never called itself (ModuleList)
        return "-"
    if len(shape) == 1:
        return str(shape[0])
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _table_rows(report, show_children):
    rows = report.layers if show_children else report.rows
    if not rows:
        return []
    top = min(r.depth for r in rows)
    return [
        (
            "  " * (r.depth - top) + r.name,
            r.type,
            _fmt_shape(r.output_shape),
            _fmt_int(r.params),
            _fmt_int(r.macs),
        )
        for r in rows
    ]


def _limit_lines(report):
    ok = {True: "PASS", False: "FAIL"}
    lines = [("MACs", f"{report.total_macs:,}", f"{report.mac_limit:,}",
              ok[report.within_mac_limit])]
    for key, nbytes in report.param_bytes.items():
        lines.append((f"parameter memory ({key})", f"{nbytes:,} B",
                      f"{report.param_limit_bytes:,} B", ok[nbytes <= report.param_limit_bytes]))
    return lines


def _header(report):
    shape = "" if report.input_shape is None else f", input (C, F, T) = {report.input_shape}"
    members = f", sum of {len(report.members)} members" if report.members else ""
    return f"Complexity of {report.model_name}{shape}{members}"


def render_text(report, show_children=False):
    """Aligned text table like the paper's Table 1, with totals and limits.

    Parameters
    ----------
    report : skasc.complexity.ComplexityReport
    show_children : bool, default=False
        Also list the layers inside composite layers (indented).

    Returns
    -------
    str
    """
    total = ("Total", "", "", f"{report.total_params:,}", f"{report.total_macs:,}")
    table = format_table(_TABLE_HEADER, _table_rows(report, show_children), _TABLE_ALIGN,
                         footer=[total])
    lines = [_header(report), table, ""]
    if report.per_model:
        lines.append("Deployed networks, per model (the limits apply to each; the table is the "
                     "largest's):")
        lines.append(format_table(
            ["model", "Params", "MACs"],
            [[name, f"{r.total_params:,}", f"{r.total_macs:,}"]
             for name, r in report.per_model.items()]))
        lines.append("")
    pb = report.param_bytes
    lines.append("Parameter memory: " + ", ".join(f"{n:,} B ({k})" for k, n in pb.items()))
    lines.append("DCASE 2023 Task 1 limits:")
    lim = _limit_lines(report)
    w0 = max(len(x[0]) for x in lim)
    w1 = max(len(x[1]) for x in lim)
    w2 = max(len(x[2]) for x in lim)
    for name, value, limit, verdict in lim:
        lines.append(f"  {name:<{w0}}  {value:>{w1}} / {limit:>{w2}} max  {verdict}")
    return "\n".join(lines)


def render_markdown(report, show_children=False):
    """The report as a Markdown table with totals and limit verdicts.

    Parameters
    ----------
    report : skasc.complexity.ComplexityReport
    show_children : bool, default=False
        Also list the layers inside composite layers.

    Returns
    -------
    str
    """
    rows = []
    for name, typ, shape, params, macs in _table_rows(report, show_children):
        indent = len(name) - len(name.lstrip(" "))
        rows.append(["&nbsp;" * indent + name.lstrip(" "), typ, shape, params, macs])
    total = ["**Total**", "", "", f"**{report.total_params:,}**", f"**{report.total_macs:,}**"]
    lines = [
        f"**{_header(report)}**",
        "",
        format_table(_TABLE_HEADER, rows, _TABLE_ALIGN, markdown=True, footer=[total]),
        "",
        format_table(["Limit (DCASE 2023 Task 1)", "Value", "Limit", "Verdict"],
                     _limit_lines(report), ["l", "r", "r", "l"], markdown=True),
    ]
    return "\n".join(lines)
