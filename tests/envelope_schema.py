"""A tiny JSON Schema validator for the subset ``docs/json-envelope.schema.json`` uses, and
helpers to check and read wanvid's ``--json`` output in tests.

Supported keywords: type, const, enum, pattern, properties, required, additionalProperties
(boolean), items, minItems, maxItems, anyOf, allOf, not, if/then/else, $ref (to ``#/$defs``).
An unknown keyword is an error, so the schema cannot silently use more than this checks
(jsonschema would be one more test dependency for ~80 lines).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "json-envelope.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_IGNORED = {"$schema", "$id", "title", "description", "$defs"}
_KNOWN = _IGNORED | {"type", "const", "enum", "pattern", "properties", "required",
                     "additionalProperties", "items", "minItems", "maxItems", "anyOf", "allOf",
                     "not", "if", "then", "else", "$ref"}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (
        _is_type(a, "number") and _is_type(b, "number") and a == b)


def errors(value: Any, schema: dict[str, Any] | bool = SCHEMA, root: dict[str, Any] = SCHEMA,
           where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty: valid)."""
    if schema is True:
        return []
    if schema is False:
        return [f"{where}: not allowed"]
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) this validator does not check: {sorted(unknown)}")
    out: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        out += errors(value, root["$defs"][ref.split("/")[-1]], root, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return out + [f"{where}: {value!r} is not of type {types}"]
    if "const" in schema and not _same(value, schema["const"]):
        out.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                out.append(f"{where}: {k!r} is required")
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], root, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{where}: unexpected key {k!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{where}: fewer than {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: more than {schema['maxItems']} item(s)")
        if "items" in schema:
            for i, v in enumerate(value):
                out += errors(v, schema["items"], root, f"{where}[{i}]")
    for sub in schema.get("allOf", []):
        out += errors(value, sub, root, where)
    if "anyOf" in schema:
        tries = [errors(value, sub, root, where) for sub in schema["anyOf"]]
        if all(tries):
            out.append(f"{where}: matches none of anyOf: " + " | ".join(t[0] for t in tries))
    if "not" in schema and not errors(value, schema["not"], root, where):
        out.append(f"{where}: must not match {schema['not']}")
    if "if" in schema:
        branch = "then" if not errors(value, schema["if"], root, where) else "else"
        if branch in schema:
            out += errors(value, schema[branch], root, where)
    return out


def envelopes(stdout: str, command: str | None = None) -> list[dict[str, Any]]:
    """Every stdout line as a validated envelope (each line must be one); ``command``
    checked when given."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no JSON on stdout"
    got = []
    for line in lines:
        env = json.loads(line)
        bad = errors(env)
        assert not bad, f"{line}\n" + "\n".join(bad)
        if command is not None:
            assert env["command"] == command, env
        got.append(env)
    return got


def last(stdout: str, command: str | None = None, exit_code: int | None = None,
         ) -> dict[str, Any]:
    """The final envelope (the result, or a stream's summary), validated; its exit_code
    checked when given."""
    envs = envelopes(stdout, command)
    if len(envs) > 1:
        assert envs[-1]["kind"] == "summary", envs
    if exit_code is not None:
        assert envs[-1]["exit_code"] == exit_code, envs[-1]
    return envs[-1]


def data(stdout: str, command: str | None = None) -> Any:
    """The data of a one-document command's only envelope."""
    envs = envelopes(stdout, command)
    assert len(envs) == 1 and envs[0]["kind"] == "result", envs
    return envs[0]["data"]


def items(stdout: str, command: str | None = None) -> list[dict[str, Any]]:
    """The data of a stream's task/job envelopes (the summary must end it)."""
    envs = envelopes(stdout, command)
    assert envs[-1]["kind"] == "summary", envs
    return [e["data"] for e in envs[:-1]]


def rows(stdout: str, command: str | None = None, *, drop_null: bool = False,
         ) -> list[dict[str, Any]]:
    """Like ``items``, each with its envelope's ``exit_code`` (for tests about outcomes);
    ``drop_null`` leaves out the keys whose value is null."""
    envs = envelopes(stdout, command)
    assert envs[-1]["kind"] == "summary", envs
    got = [{**e["data"], "exit_code": e["exit_code"]} for e in envs[:-1]]
    if drop_null:
        got = [{k: v for k, v in row.items() if v is not None} for row in got]
    return got
