"""Typed, declarative operation parameters: validation and JSON Schema from one source."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.errors import InvalidParams

_JSON_TYPE = {int: "integer", float: "number", bool: "boolean", str: "string"}


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any = None
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: Sequence[Any] | None = None
    pattern: str | None = None
    # A list of values of `type` (for example LoRA files).
    many: bool = False
    nullable: bool = False

    def schema(self) -> dict[str, Any]:
        item: dict[str, Any] = {"type": _JSON_TYPE[self.type]}
        if self.minimum is not None:
            item["minimum"] = self.minimum
        if self.maximum is not None:
            item["maximum"] = self.maximum
        if self.choices is not None:
            item["enum"] = list(self.choices)
        if self.pattern is not None:
            item["pattern"] = self.pattern
        out: dict[str, Any] = {"type": "array", "items": item} if self.many else item
        if self.nullable:
            out = {"anyOf": [out, {"type": "null"}]}
        if self.description:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = list(self.default) if self.many else self.default
        return out

    def coerce(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise InvalidParams(f"parameter '{self.name}' may not be null", param=self.name)
        if self.many:
            if not isinstance(value, list):
                raise InvalidParams(f"parameter '{self.name}' must be a list", param=self.name)
            return [self._one(v) for v in value]
        return self._one(value)

    def _one(self, value: Any) -> Any:
        name = self.name
        if self.type is bool:
            if not isinstance(value, bool):
                raise InvalidParams(f"parameter '{name}' must be true or false", param=name)
        elif self.type is int:
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            ):
                raise InvalidParams(f"parameter '{name}' must be an integer", param=name)
            value = int(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidParams(f"parameter '{name}' must be a number", param=name)
            value = float(value)
            if not math.isfinite(value):
                raise InvalidParams(f"parameter '{name}' must be finite", param=name)
        elif self.type is str:
            if not isinstance(value, str):
                raise InvalidParams(f"parameter '{name}' must be a string", param=name)
            if len(value) > 4096:
                raise InvalidParams(f"parameter '{name}' is too long", param=name)
        if self.minimum is not None and value < self.minimum:
            raise InvalidParams(f"parameter '{name}' must be at least {self.minimum}", param=name)
        if self.maximum is not None and value > self.maximum:
            raise InvalidParams(f"parameter '{name}' must be at most {self.maximum}", param=name)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise InvalidParams(f"parameter '{name}' must be one of: {allowed}", param=name)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise InvalidParams(f"parameter '{name}' has an invalid format", param=name)
        return value


@dataclass(frozen=True)
class ParamSchema:
    params: tuple[Param, ...] = ()

    def __iter__(self):
        return iter(self.params)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {p.name: p.schema() for p in self.params},
        }

    def validate(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in, types coerced, unknown names refused."""
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidParams(
                f"unknown parameter '{unknown[0]}'; known: {', '.join(known) or 'none'}",
                param=unknown[0],
            )
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in values:
                out[p.name] = p.coerce(values[p.name])
            else:
                out[p.name] = list(p.default) if p.many and p.default is not None else p.default
        return out


def parse_cli_value(text: str) -> Any:
    """`--param key=value` values: JSON when it parses (numbers, true, lists), else a string."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
