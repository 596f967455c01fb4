"""What the ``omnimem`` command prints: tables of search hits, context entries and evidence, and
key/value tables of reports.

Colour (rich) when stdout is a terminal or ``FORCE_COLOR`` is set, with the text column cut to the
terminal's width; plain aligned text when stdout is piped or ``NO_COLOR`` is set (cut to the width only
on a terminal). Scripts should use ``--json``: these tables are for people and may change.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TextIO

from omnimem.types import hms

__all__ = [
    "Column", "write_table", "write_hits", "write_context", "write_evidence", "write_report", "hms", "span_text",
]  # fmt: skip

KIND_STYLES = {"item": "green", "fact": "magenta", "summary": "cyan", "frame": "yellow"}  # context entry kinds
GAP = "  "  # between the columns of a plain table
MIN_TEXT = 16  # the text column is never cut narrower than this, in characters


@dataclass(frozen=True)
class Column:
    header: str  # "" for every column: no header line
    justify: str = "left"  # "left" or "right"
    style: str | None = None  # rich style of the column's cells in colour, e.g. "dim", "bold cyan"
    flex: bool = False  # the free-text column: one line, cut to what the terminal leaves it
    max_width: int | None = None  # longer cells are cut to this many characters (names, paths)


Cell = Any  # str, or (str, rich style) for a cell coloured on its own (a context entry's kind)


def write_table(
    columns: Sequence[Column], rows: Iterable[Sequence[Cell]], *, footer: str | None = None,
    file: TextIO | None = None,
) -> None:  # fmt: skip
    """Print ``rows`` under ``columns``, then ``footer``: a rich table in colour, else aligned text."""
    file = sys.stdout if file is None else file
    rows = [[_cell(c, col.max_width) for c, col in zip(row, columns)] for row in rows]
    console = _colour_console(file)
    if console is None:
        lines = _plain_lines(columns, rows, width=_terminal_width(file))
        lines += [footer] if footer else []
        if lines:
            file.write("\n".join(lines) + "\n")
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD, show_header=any(c.header for c in columns), header_style="bold",
        show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
    )  # fmt: skip
    for col in columns:
        # only the flex column may shrink (no_wrap=False lets rich collapse it); its Text stays on one line
        table.add_column(col.header, justify=col.justify, style=col.style, no_wrap=not col.flex, ratio=None)
    for row in rows:
        table.add_row(
            *(Text(text, style=style or "", no_wrap=True, overflow="ellipsis" if col.flex else "fold")
              for col, (text, style) in zip(columns, row))
        )  # fmt: skip
    console.print(table)
    if footer:
        console.print(Text(footer, style="dim"))


def write_hits(hits: Sequence[Any], *, file: TextIO | None = None) -> None:
    """Search hits (:class:`omnimem.types.Hit`): rank, score, id, modality, who, when, text."""
    columns = [
        Column("#", "right", "dim"), Column("score", "right", "bold"), Column("id", style="dim"),
        Column("modality", style="blue"), Column("speaker/source", style="cyan", max_width=24), Column("time"),
        Column("text", flex=True),
    ]  # fmt: skip
    rows = [
        (str(n), f"{h.score:.3f}", h.id[:12], h.modality, h.speaker or _source(h.source),
         span_text(h.t_start, h.t_end) or _when(h.event_time), h.text)
        for n, h in enumerate(hits, start=1)
    ]  # fmt: skip
    write_table(columns, rows, footer=None if hits else "no hits", file=file)


def write_context(ctx: Any, *, file: TextIO | None = None) -> None:
    """A packed context (:class:`omnimem.retrieval.Context`): one row per entry as the prompt cites
    it (``E1`` ...), then ``N entries, T/B tokens, D dropped``."""
    columns = [
        Column("E", "right", "dim"), Column("kind"), Column("score", "right"), Column("tokens", "right"),
        Column("retrievers", style="dim", max_width=24), Column("text", flex=True),
    ]  # fmt: skip
    rows = [
        (f"E{n}", _kind(e.kind), f"{e.score:.3f}", str(e.tokens), ",".join(e.retrievers), e.text)
        for n, e in enumerate(ctx.entries, start=1)
    ]  # fmt: skip
    footer = f"{len(ctx.entries)} entries, {ctx.tokens}/{ctx.budget_tokens} tokens, {ctx.dropped} dropped"
    write_table(columns, rows, footer=footer, file=file)


def write_evidence(rows: Sequence[Any], *, file: TextIO | None = None) -> None:
    """The evidence of an answer (:class:`omnimem.server.answering.EvidenceRow`), as cited (``[E1]``)."""
    columns = [
        Column("E", "right", "dim"), Column("kind"), Column("score", "right"), Column("id", style="dim"),
        Column("span/source", style="cyan", max_width=24), Column("text", flex=True),
    ]  # fmt: skip
    table = [
        (e.id, _kind(e.kind), f"{e.score:.3f}", e.item_id[:12],
         span_text(*e.span) if e.span else _source(e.source), e.text)
        for e in rows
    ]  # fmt: skip
    write_table(columns, table, footer=None if rows else "no evidence", file=file)


def write_report(report: Mapping[str, Any], *, file: TextIO | None = None) -> None:
    """A report dict (check, consolidate, graph build / stats) as ``key  value`` rows; nested keys
    are dotted (``indexes.text.missing``); an ``ok`` row is green or red."""
    rows = []
    for key, value in _flatten(report):
        style = ("green" if value else "red") if key.rsplit(".", 1)[-1] == "ok" else None
        rows.append(((key, "bold"), (_value(value), style)))
    write_table([Column("", style="cyan"), Column("", flex=True)], rows, file=file)


def span_text(t_start: float | None, t_end: float | None = None) -> str:
    """A media span as ``HH:MM:SS-HH:MM:SS`` (``""`` without a start)."""
    if t_start is None:
        return ""
    return f"{hms(t_start)}-{hms(t_end)}" if t_end is not None else hms(t_start)


# -- helpers -------------------------------------------------------------------------------------
def _colour_console(file: TextIO) -> Any:
    """A rich console for ``file`` when it should get colour (rich reads FORCE_COLOR, NO_COLOR and
    TERM=dumb), else None."""
    from rich.console import Console

    console = Console(file=file, highlight=False)
    return None if console.color_system is None or console.no_color else console


def _terminal_width(file: TextIO) -> int | None:
    isatty = getattr(file, "isatty", None)
    return shutil.get_terminal_size().columns if isatty is not None and isatty() else None


def _plain_lines(columns: Sequence[Column], rows: list[list[tuple[str, str | None]]], width: int | None) -> list[str]:
    table = [[text for text, _ in row] for row in rows]
    header = any(c.header for c in columns)
    if header:
        table.insert(0, [c.header for c in columns])
    widths = [max((len(r[i]) for r in table), default=0) for i in range(len(columns))]
    if width is not None:  # a terminal with NO_COLOR: the flex column takes what the others leave
        fixed = sum(w for w, c in zip(widths, columns) if not c.flex) + len(GAP) * (len(columns) - 1)
        for i, col in enumerate(columns):
            if col.flex:
                widths[i] = min(widths[i], max(MIN_TEXT, width - fixed))
                for r in table:
                    r[i] = _cut(r[i], widths[i])
    lines = []
    for r in table:
        cells = [text.rjust(w) if col.justify == "right" else text.ljust(w) for text, w, col in zip(r, widths, columns)]
        lines.append(GAP.join(cells).rstrip())
    return lines


def _cell(value: Cell, max_width: int | None = None) -> tuple[str, str | None]:
    text, style = value if isinstance(value, tuple) else (value, None)
    text = " ".join(str(text).split())  # one line: newlines and runs of spaces become one space
    return (_cut(text, max_width) if max_width else text), style


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)].rstrip() + "…"


def _kind(kind: str) -> tuple[str, str]:
    return kind, KIND_STYLES.get(kind, "")


def _source(source: str | None) -> str:
    """A file's name rather than its whole path; conversation ids and URLs' last part as they are."""
    return PurePath(source).name or source if source else ""


def _when(event_time: str | None) -> str:
    """``2023-03-02T10:00:00+00:00`` -> ``2023-03-02 10:00``."""
    return event_time[:16].replace("T", " ") if event_time else ""


def _flatten(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, v in value.items():
        name = f"{prefix}{key}"
        if isinstance(v, Mapping) and v:
            out += _flatten(v, f"{name}.")
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            out += [(f"{name}[{i}]", " ".join(f"{k}={x[k]}" for k in x)) for i, x in enumerate(v)]
        else:
            out.append((name, v))
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) if value else "none"
    if isinstance(value, Mapping):
        return "none"  # an empty mapping; non-empty ones were flattened
    return "" if value is None else str(value)
