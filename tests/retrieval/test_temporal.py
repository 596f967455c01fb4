"""The rule-based time-expression parser and the windows it resolves to (pure functions)."""

from __future__ import annotations

import pytest

from omnimem.errors import ConfigError
from omnimem.retrieval.temporal import TimeExpression, anchors, parse_time, resolve, window

NOW = "2023-10-20T10:00:00"


def _one(query: str) -> TimeExpression:
    found = parse_time(query)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("query", "kind", "span"),
    [
        ("What did Ann do on 8 May 2023?", "date", ("2023-05-08T00:00:00", "2023-05-09T00:00:00")),
        ("What did Ann show on October 13, 2023?", "date", ("2023-10-13T00:00:00", "2023-10-14T00:00:00")),
        ("What did Gina find on 1 February, 2023?", "date", ("2023-02-01T00:00:00", "2023-02-02T00:00:00")),
        ("Notes from 2023-05-08", "date", ("2023-05-08T00:00:00", "2023-05-09T00:00:00")),
        ("What setback did Ann face in October 2023?", "month", ("2023-10-01T00:00:00", "2023-11-01T00:00:00")),
        ("How often did Ann swim in 2022?", "year", ("2022-01-01T00:00:00", "2023-01-01T00:00:00")),
        ("What did Ann do in summer 2023?", "season", ("2023-06-01T00:00:00", "2023-09-01T00:00:00")),
    ],
)
def test_absolute_expressions_resolve_without_context(query, kind, span):
    expr = _one(query)
    assert expr.kind == kind and resolve(expr) == span


def test_a_month_or_day_without_a_year_is_the_latest_one_not_after_the_present():
    assert resolve(_one("When did Ann go camping in June?"), now=NOW) == ("2023-06-01T00:00:00", "2023-07-01T00:00:00")
    assert resolve(_one("What happened in December?"), now=NOW) == ("2022-12-01T00:00:00", "2023-01-01T00:00:00")
    assert resolve(_one("What did Ann do on 3 July?"), now=NOW) == ("2023-07-03T00:00:00", "2023-07-04T00:00:00")
    summer = _one("Did Ann go to a parade during the summer?")
    assert summer.kind == "season" and resolve(summer, now=NOW) == ("2023-06-01T00:00:00", "2023-09-01T00:00:00")


def test_may_the_verb_is_not_a_month_but_in_may_is():
    assert parse_time("May I ask what you painted?") == []
    assert _one("What did you paint in May?").month == 5


def test_relative_expressions_count_back_from_the_memory_present():
    since, until = resolve(_one("What did Ann do last week?"), now=NOW)
    assert since <= "2023-10-13" and until > NOW
    since, until = resolve(_one("What happened three weeks ago?"), now=NOW)
    assert "2023-09-25" <= since < "2023-09-29" < until <= "2023-10-05"
    assert resolve(_one("What did they do last year?"), now=NOW) == ("2022-01-01T00:00:00", "2023-01-01T00:00:00")
    assert resolve(_one("Ann went yesterday"), now=NOW)[0] < NOW


def test_before_and_after_an_event_need_its_time():
    expr = _one("When did Ann go on a hike after the road trip?")
    assert expr.kind == "after" and expr.anchor == "the road trip" and anchors([expr]) == ["the road trip"]
    assert resolve(expr, now=NOW) is None  # the anchor was not found
    assert resolve(expr, anchor="2023-08-01T15:00:00") == ("2023-08-01T00:00:00", None)
    week = _one("What did Ann do the week before the wedding?")
    assert week.kind == "before" and week.anchor == "the wedding"
    assert resolve(week, anchor="2023-08-10T09:00:00") == ("2023-08-03T00:00:00", "2023-08-11T00:00:00")


def test_before_a_date_needs_no_search():
    expr = _one("What did Ann paint the week before 9 June 2023?")
    assert expr.kind == "before" and expr.anchor is None
    assert resolve(expr) == ("2023-06-02T00:00:00", "2023-06-09T00:00:00")


def test_questions_without_time_words_have_no_expression():
    assert parse_time("When did Caroline go to the LGBTQ support group?") == []
    assert parse_time("What is Ann's favourite colour?") == []


def test_window_intersects_and_rejects_disjoint_spans():
    assert window([("2023-01-01", "2023-12-31"), ("2023-06-01", None)]) == ("2023-06-01", "2023-12-31")
    assert window([("2023-01-01", "2023-02-01"), ("2023-03-01", "2023-04-01")]) is None
    assert window([]) is None


def test_bad_inputs_raise_config_errors():
    with pytest.raises(ConfigError):
        parse_time(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TimeExpression("x", "someday")
    with pytest.raises(ConfigError):
        resolve(_one("What happened last week?"), now="not a time")


def test_when_questions_and_dated_statements():
    from omnimem.retrieval.temporal import asks_when, dated_statement

    assert asks_when("When did Ann go to the museum?") and asks_when("What year did Bob move?")
    assert asks_when("How long ago was Ann's birthday?") and not asks_when("What did Ann do when it rained?")
    assert dated_statement("I went to a support group yesterday and it was great.")
    assert dated_statement("We adopted a puppy two weeks ago!") and dated_statement("I just signed up for pottery.")
    assert not dated_statement("How was the support group?")
