"""Time expressions in a question, read by a small rule-based parser, and the event-time window they name.

Pure functions, no model (TimeML's types, reduced to what a memory can use): a **date** ("on 8 May
2023", "October 13, 2023", "2023-05-08"), a **month** ("in May", "June 2023"), a **year** ("in
2022"), a **season** ("during the summer"), a time **relative** to the memory's own present ("last
week", "yesterday", "three weeks ago", "recently") and a time **anchored** on an event of the memory
("before X", "after X", "the week before X", where X is found by a search; or on a date: "the week
before 9 June 2023"). :func:`parse_time` finds them; :func:`resolve` turns one into an event-time
window ``[since, until)`` given the memory's present (its latest event time), the event time of an
anchor and, for a month or day named without a year, the latest such month not after the present.

The retrieval stage (:mod:`omnimem.retrieval.focused`) searches inside the window and nudges the
ranking with what it finds; a window is never a hard filter, because people misdate things.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from omnimem.errors import ConfigError

__all__ = ["TimeExpression", "parse_time", "resolve", "window", "anchors", "asks_when", "dated_statement"]

KINDS = ("date", "month", "year", "season", "relative", "before", "after")

_MONTHS = {m.lower(): n for n, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): n for n, m in enumerate(calendar.month_abbr) if m and m.lower() != "may"})
_MONTHS["sept"] = 9
_MONTH = r"(?P<{}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{}>(?:19|20)\d\d)"
_NUMBERS = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBERS.update(a=1, an=1, couple=2, few=3, several=3)
_UNIT_DAYS = {"day": 1, "night": 1, "week": 7, "weekend": 7, "fortnight": 14, "month": 31, "year": 366}
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11), "winter": (12, 2)}


def _p(template: str, *names: str) -> str:
    return template.format(*names)


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b")),
    ("dmy", re.compile(_p(_DAY, "d") + r"\s+(?:of\s+)?" + _p(_MONTH, "m") + r",?\s+" + _p(_YEAR, "y") + r"\b", re.I)),
    ("mdy", re.compile(r"\b" + _p(_MONTH, "m") + r"\s+" + _p(_DAY, "d") + r",?\s+" + _p(_YEAR, "y") + r"\b", re.I)),
    ("my", re.compile(r"\b" + _p(_MONTH, "m") + r",?\s+(?:of\s+)?" + _p(_YEAR, "y") + r"\b", re.I)),
    ("dm", re.compile(r"\b" + _p(_DAY, "d") + r"\s+(?:of\s+)?" + _p(_MONTH, "m") + r"(?!\w)", re.I)),
    ("md", re.compile(r"\b" + _p(_MONTH, "m") + r"\s+" + _p(_DAY, "d") + r"\b(?!\s*(?:,\s*)?\d)", re.I)),
    (
        "m",
        re.compile(
            r"\b(?:in|during|since|by|until|of|early|late|mid-?|last|this|next|throughout)\s+"
            + _p(_MONTH, "m")
            + r"(?!\w)",
            re.I,
        ),
    ),  # fmt: skip
    ("M", re.compile(r"\b(?P<m>January|February|March|April|June|July|August|September|October|November|December)\b")),
    (
        "season",
        re.compile(
            r"\b(?:in|during|over|this|last|next|the)\s+(?:the\s+)?(?P<s>spring|summer|autumn|fall|winter)"
            r"(?:\s+(?:of\s+)?" + _p(_YEAR, "y") + r")?\b",
            re.I,
        ),
    ),  # fmt: skip
    ("y", re.compile(r"\b" + _p(_YEAR, "y") + r"\b")),
]
_RELATIVE: list[tuple[re.Pattern[str], tuple[int, int]]] = [
    (re.compile(r"\byesterday\b|\blast night\b", re.I), (-2, 0)),
    (re.compile(r"\btoday\b|\btonight\b|\bthis morning\b", re.I), (-1, 1)),
    (re.compile(r"\blast weekend\b|\bthis past weekend\b", re.I), (-10, 0)),
    (re.compile(r"\blast week\b|\bthis past week\b", re.I), (-14, 0)),
    (re.compile(r"\bthis week\b", re.I), (-7, 1)),
    (re.compile(r"\blast month\b", re.I), (-62, 0)),
    (re.compile(r"\bthis month\b", re.I), (-31, 1)),
    (re.compile(r"\brecently\b|\blately\b|\bthese days\b", re.I), (-45, 1)),
]
_AGO = re.compile(r"\b(?P<n>\d+|" + "|".join(_NUMBERS) + r")\s+(?P<u>day|night|week|weekend|fortnight|month|year)s?\s+ago\b",
                  re.I)  # fmt: skip
_YEAR_REL = re.compile(r"\b(?P<w>last|this|next)\s+year\b", re.I)
_ANCHORED = re.compile(
    r"\b(?:(?P<q>the|a|one|two|\d+)\s+(?P<u>day|night|week|weekend|month|year)s?\s+)?(?P<rel>before|after|since|prior to)"
    r"\s+(?P<x>[^?.!,;]+)",
    re.I,
)


@dataclass(frozen=True)
class TimeExpression:
    """One time expression of a query."""

    text: str  # the words of the query it was read from
    kind: str  # one of KINDS: date, month, year, season, relative, before, after
    start: str | None = None  # ISO-8601 start (inclusive) when the words fix it; else None
    end: str | None = None  # ISO-8601 end (exclusive) when the words fix it; else None
    month: int | None = None  # a month (or a season's first month) named without a year
    day: int | None = None  # with ``month``: a day named without a year
    months: int = 1  # how many months from ``month`` (a season: 3)
    days: tuple[int, int] | None = None  # relative / anchored: the window in days around the present / anchor
    anchor: str | None = None  # before / after: the event phrase (None when the anchor is a date)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown time expression kind {self.kind!r}; use one of {', '.join(KINDS)}")


def _iso(day: dt.datetime) -> str:
    return day.isoformat()


def _month_span(year: int, month: int, months: int = 1) -> tuple[str, str]:
    start = dt.datetime(year, month, 1)
    end_month = month - 1 + months
    end = dt.datetime(year + end_month // 12, end_month % 12 + 1, 1)
    return _iso(start), _iso(end)


def _day_span(year: int, month: int, day: int) -> tuple[str, str] | None:
    try:
        start = dt.datetime(year, month, day)
    except ValueError:
        return None
    return _iso(start), _iso(start + dt.timedelta(days=1))


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS.get(word.lower(), 1)


def parse_time(query: str) -> list[TimeExpression]:
    """The time expressions of ``query``, in the order they appear (overlapping matches: the longest first).

    >>> [e.kind for e in parse_time("What did Mel paint the week before 9 June 2023?")]
    ['before']
    """
    if not isinstance(query, str):
        raise ConfigError(f"query must be a str, got {type(query).__name__}")
    found: list[tuple[int, int, TimeExpression]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    def add(m: re.Match[str], expr: TimeExpression, span: tuple[int, int] | None = None) -> None:
        a, b = span or m.span()
        found.append((a, b, expr))
        taken.append((a, b))

    for m in _ANCHORED.finditer(query):  # first: its anchor may hold a date, which it consumes
        rel = m.group("rel").lower()
        kind = "before" if rel in ("before", "prior to") else "after"
        unit = (m.group("u") or "").lower()
        size = _UNIT_DAYS.get(unit, 0) * _number(m.group("q") or "1") if unit else 0
        days = ((-size, 0) if kind == "before" else (0, size)) if size else None
        inner = _dates(m.group("x"))
        if inner:  # anchored on a date: "the week before 9 June 2023"
            start, end = inner[0].start, inner[0].end
            if start is not None and end is not None:
                lo = dt.datetime.fromisoformat(start) + dt.timedelta(days=days[0]) if days else None
                hi = dt.datetime.fromisoformat(start) + dt.timedelta(days=days[1]) if days else None
                if kind == "before":
                    span = (_iso(lo) if lo else None, start if days else start)
                else:
                    span = (end, _iso(hi) if hi else None)
                add(m, TimeExpression(m.group(0).strip(), kind, span[0], span[1], days=days))
                continue
        phrase = m.group("x").strip()
        if len(phrase.split()) > 12 or not re.search(r"\w", phrase):
            continue
        add(m, TimeExpression(m.group(0).strip(), kind, days=days, anchor=phrase))
    for expr, (a, b) in _dates_with_spans(query):
        if free(a, b):
            found.append((a, b, expr))
            taken.append((a, b))
    for pattern, days in _RELATIVE:
        for m in pattern.finditer(query):
            if free(*m.span()):
                add(m, TimeExpression(m.group(0), "relative", days=days))
    for m in _AGO.finditer(query):
        if free(*m.span()):
            size = _UNIT_DAYS[m.group("u").lower()] * _number(m.group("n"))
            half = max(1, _UNIT_DAYS[m.group("u").lower()] // 2 + 1)
            add(m, TimeExpression(m.group(0), "relative", days=(-size - half, -size + half)))
    for m in _YEAR_REL.finditer(query):
        if free(*m.span()):
            shift = {"last": -1, "this": 0, "next": 1}[m.group("w").lower()]
            add(m, TimeExpression(m.group(0), "year", days=(shift, shift)))  # years, resolved against the present
    return [e for _, _, e in sorted(found, key=lambda t: t[0])]


def _dates(text: str) -> list[TimeExpression]:
    return [e for e, _ in _dates_with_spans(text)]


def _dates_with_spans(text: str) -> list[tuple[TimeExpression, tuple[int, int]]]:
    """Dates, months, seasons and years in ``text`` (longest pattern first, no overlaps)."""
    out: list[tuple[TimeExpression, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            a, b = m.span()
            if any(not (b <= s or a >= e) for s, e in taken):
                continue
            expr = _date_expr(name, m)
            if expr is not None:
                out.append((expr, (a, b)))
                taken.append((a, b))
    return sorted(out, key=lambda p: p[1][0])


def _date_expr(name: str, m: re.Match[str]) -> TimeExpression | None:
    g = m.groupdict()
    month = _MONTHS.get((g.get("m") or "").lower().rstrip(".")) if name != "iso" else int(g["m"])
    text = m.group(0).strip()
    if name in ("iso", "dmy", "mdy"):
        span = _day_span(int(g["y"]), month or 0, int(g["d"])) if month else None
        return TimeExpression(text, "date", *span) if span else None
    if name == "my" and month:
        return TimeExpression(text, "month", *_month_span(int(g["y"]), month))
    if name in ("dm", "md") and month and 1 <= int(g["d"]) <= 31:
        return TimeExpression(text, "date", month=month, day=int(g["d"]))
    if name in ("m", "M") and month:
        return TimeExpression(text, "month", month=month)
    if name == "season":
        first, last = _SEASONS[g["s"].lower()]
        if g.get("y"):
            return TimeExpression(text, "season", *_month_span(int(g["y"]), first, 3))
        return TimeExpression(text, "season", month=first, months=3)
    if name == "y":
        year = int(g["y"])
        return TimeExpression(text, "year", _iso(dt.datetime(year, 1, 1)), _iso(dt.datetime(year + 1, 1, 1)))
    return None


def _at(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError as e:
        raise ConfigError(f"not an ISO-8601 time: {value!r}") from e


def resolve(
    expr: TimeExpression, *, now: str | dt.datetime | None = None, anchor: str | dt.datetime | None = None
) -> tuple[str | None, str | None] | None:
    """The event-time window ``(since, until)`` (ISO-8601, either end None = open) that ``expr`` names.

    ``now``: the memory's present (its latest event time) for relative expressions and for a month or
    day named without a year (the latest one not after ``now``; without ``now``: today).
    ``anchor``: the event time of the anchor of a before / after expression (None: unresolvable).
    Returns None when the expression cannot be resolved.
    """
    present = _at(now) or dt.datetime.now()
    if expr.start is not None or expr.end is not None:
        return expr.start, expr.end
    if expr.kind in ("before", "after"):
        at = _at(anchor)
        if at is None:
            return None
        day = dt.datetime(at.year, at.month, at.day)
        if expr.days is None:  # plain before / after: an open window, the anchor's own day included
            return (None, _iso(day + dt.timedelta(days=1))) if expr.kind == "before" else (_iso(day), None)
        lo, hi = expr.days
        return _iso(day + dt.timedelta(days=lo)), _iso(day + dt.timedelta(days=hi + 1))
    if expr.kind == "year" and expr.days is not None:
        year = present.year + expr.days[0]
        return _iso(dt.datetime(year, 1, 1)), _iso(dt.datetime(year + 1, 1, 1))
    if expr.kind == "relative" and expr.days is not None:
        day = dt.datetime(present.year, present.month, present.day)
        return _iso(day + dt.timedelta(days=expr.days[0])), _iso(day + dt.timedelta(days=expr.days[1] + 1))
    if expr.month is not None:
        year = present.year if (expr.month, expr.day or 1) <= (present.month, present.day) else present.year - 1
        if expr.day is not None:
            return _day_span(year, expr.month, expr.day)
        if expr.months > 1 and expr.month == 12 and present.month < 12:
            year -= 1  # a winter named before December: the one that began last December
        return _month_span(year, expr.month, expr.months)
    return None


def window(spans: Sequence[tuple[str | None, str | None]]) -> tuple[str | None, str | None] | None:
    """The intersection of event-time windows (None when they do not overlap or none is given)."""
    if not spans:
        return None
    lows = [s for s, _ in spans if s is not None]
    highs = [u for _, u in spans if u is not None]
    since, until = (max(lows) if lows else None), (min(highs) if highs else None)
    if since is not None and until is not None and since >= until:
        return None
    return since, until


def anchors(exprs: Sequence[TimeExpression]) -> list[str]:
    """The event phrases that must be searched to resolve ``exprs`` (before / after an event)."""
    return list(dict.fromkeys(e.anchor for e in exprs if e.anchor))


_WHEN = re.compile(r"^\s*(?:when\b|what (?:date|day|time|year|month|week)\b|how long ago\b|since when\b)", re.I)
_DEIXIS = re.compile(
    r"\b(?:yesterday|today|tonight|this (?:morning|afternoon|evening|week|weekend|month|year|past)|"
    r"last (?:night|week|weekend|month|year|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:a|one|two|three|four|five|few|couple of|several|\d+) (?:days?|weeks?|weekends?|months?|years?) ago|"
    r"recently|just (?:got|had|did|went|finished|started|signed|joined|came|bought|took|made))\b",
    re.I,
)


def asks_when(query: str) -> bool:
    """Whether ``query`` asks for the time of an event ("When did ...?", "What year ...?", "How long ago ...?")."""
    return bool(_WHEN.search(query))


def dated_statement(text: str) -> bool:
    """Whether ``text`` tells of an event with a time word relative to when it was said ("I went to a
    support group yesterday"): the statement whose date, with the item's event time, answers "when"."""
    return bool(_DEIXIS.search(text))
