from __future__ import annotations

import json
import logging

import pytest

from omnimem.errors import ConfigError, CorruptInput
from omnimem.vlm.base import Generation, as_messages
from omnimem.vlm.structured import extract_json, generate_json, parse_json, repair_json, schema_errors

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


class ScriptedGenerator:
    """A fake LLM that returns its scripted answers in order and records the prompts it saw."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def generate(self, messages, *, images=(), max_new_tokens=256, temperature=0.0, json_schema=None):
        self.prompts.append(as_messages(messages))
        return Generation(self.answers.pop(0), tokens_in=10, tokens_out=5, latency_s=0.01)

    def stream(self, messages, **kwargs):
        yield self.generate(messages, **kwargs).text

    def count_tokens(self, text):
        return len(text.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure!\n```json\n{"a": 1,}\n```\nHope this helps.', {"a": 1}),
        (
            "The answer is {'a': 'it\\'s', b: True, 'c': [1, 2,], d: None} as requested.",
            {"a": "it's", "b": True, "c": [1, 2], "d": None},
        ),
        ('{"a": [1, 2, {"b": "cut off', {"a": [1, 2, {"b": "cut off"}]}),
        ('{"a": 1, "b"', {"a": 1, "b": None}),
        ('{"a": 1, "b":', {"a": 1, "b": None}),
        ('{"a": 1, // why\n "b": 2e3}', {"a": 1, "b": 2000.0}),
        ('[{"x": "line\nbreak"}]', [{"x": "line\nbreak"}]),
        ('{"name": "Paris"} and then {"other": 1}', {"name": "Paris"}),
    ],
)
def test_parse_json_extracts_and_repairs(text, expected):
    assert parse_json(text) == expected


def test_repair_keeps_valid_json_meaning():
    value = {"a": [1, -2.5, True, None, "x, y}"], "b": {"c": "d'e"}}
    assert json.loads(repair_json(json.dumps(value))) == value


def test_parse_json_without_json_raises_corrupt_input():
    assert extract_json("no braces here") is None
    with pytest.raises(CorruptInput, match="no JSON"):
        parse_json("no braces here")


def test_schema_errors_name_the_path():
    assert schema_errors({"city": "Paris", "population": 2}, SCHEMA) == []
    errors = schema_errors({"city": "Paris", "population": "many"}, SCHEMA)
    assert errors and errors[0].startswith("population:")
    with pytest.raises(ConfigError, match="not a valid JSON schema"):
        schema_errors({}, {"type": "no-such-type"})


def test_generate_json_repairs_then_retries_with_the_error():
    fake = ScriptedGenerator(
        [
            "Here you go: {city: 'Paris', population: 'lots'",  # repairable, but fails the schema
            '```json\n{"city": "Paris", "population": 2100000,}\n```',  # repairable and valid
        ]
    )
    out = generate_json(fake, "Which city is the capital of France?", SCHEMA, retries=2)
    assert out.parsed == {"city": "Paris", "population": 2100000}
    assert out.tokens_in == 20 and out.tokens_out == 10  # summed over both attempts
    assert len(fake.prompts) == 2
    assert "JSON schema" in fake.prompts[0][-1].content
    retry = fake.prompts[1]
    assert retry[-2].role == "assistant" and "lots" in retry[-2].content
    assert retry[-1].role == "user" and "population" in retry[-1].content


def test_generate_json_gives_up_with_corrupt_input_and_logs(caplog):
    fake = ScriptedGenerator(["I cannot do that.", "Still no.", "Nope {"])
    with caplog.at_level(logging.WARNING, logger="omnimem.vlm.structured"):
        with pytest.raises(CorruptInput, match="after 3 attempts"):
            generate_json(fake, "Capital of France?", SCHEMA, retries=2)
    assert len(fake.prompts) == 3
    assert "Still no." in caplog.text


def test_generate_json_rejects_bad_arguments_before_calling():
    fake = ScriptedGenerator([])
    with pytest.raises(ConfigError):
        generate_json(fake, "q", SCHEMA, retries=-1)
    with pytest.raises(ConfigError):
        generate_json(fake, "q", {"type": 3})
    assert fake.prompts == []
