"""Scalar vocabulary of the spec language: names, durations, schedules, column types, secret references."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ENV_REF_RE = re.compile(r"^env:([A-Z_][A-Z0-9_]*)$")
DURATION_RE = re.compile(r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def check_name(value: str) -> str:
    """A name that is safe as a SQL identifier, a file name and part of a Python identifier."""
    if not NAME_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid name: use lowercase letters, digits and underscores, "
            "starting with a letter, at most 63 characters"
        )
    if "__" in value:
        raise ValueError(f"'{value}' is not a valid name: '__' is reserved (platformgen joins names with it)")
    if keyword.iskeyword(value):
        raise ValueError(f"'{value}' is not a valid name: it is a Python keyword")
    return value


def check_column_name(value: str) -> str:
    """Column names: like names, but '__' is allowed (source columns often use it)."""
    if not NAME_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid column name: use lowercase letters, digits and underscores, "
            "starting with a letter, at most 63 characters"
        )
    if value.startswith("_"):
        raise ValueError(f"'{value}' is not a valid column name: a leading '_' is reserved for platform columns")
    return value


Name = Annotated[str, AfterValidator(check_name)]
TEAM_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def check_team_name(value: str) -> str:
    """Team names: lowercase, digits, '_' and '-'."""
    if not TEAM_RE.match(value):
        raise ValueError(f"'{value}' is not a valid team name: use lowercase letters, digits, '_' and '-'")
    return value


TeamName = Annotated[str, AfterValidator(check_team_name)]
ColumnName = Annotated[str, AfterValidator(check_column_name)]


def parse_duration(value: Any) -> int:
    """'90s', '5m', '2h', '1d', '1w', '1h30m' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 1d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str) and value.strip() and (m := DURATION_RE.match(value)):
        w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        return (((w * 7 + d) * 24 + h) * 60 + mi) * 60 + s
    raise ValueError(f"{value!r} is not a duration: write e.g. 30s, 5m, 2h, 1d or 1h30m")


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"}, {"type": "integer"}]}
    ),
]


def _check_cron_field(text: str, index: int) -> None:
    low, high = _CRON_RANGES[index]
    names = _MONTHS if index == 3 else _DAYS if index == 4 else []
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"bad step '{step}' in the {_CRON_NAMES[index]} field")
        if base == "*":
            continue
        for bound in base.split("-", 1):
            if bound.lower() in names:
                continue
            if not bound.isdigit() or not low <= int(bound) <= high:
                raise ValueError(f"'{bound}' is out of range {low}-{high} in the {_CRON_NAMES[index]} field")


def check_schedule(value: str) -> str:
    """A cron expression (5 fields) or an Airflow preset."""
    if value.startswith("@"):
        if value not in PRESETS:
            raise ValueError(f"unknown schedule preset '{value}': use one of {', '.join(PRESETS)} or a cron expression")
        return value
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"'{value}' is not a schedule: use a preset ({', '.join(PRESETS)}) or a 5-field cron expression "
            "such as '0 6 * * *'"
        )
    for index, text in enumerate(fields):
        try:
            _check_cron_field(text, index)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression '{value}': {exc}") from None
    return value


Schedule = Annotated[str, AfterValidator(check_schedule)]


def check_env_ref(value: str) -> str:
    """A secret reference: env:VARIABLE_NAME; anything else would put a secret in the spec."""
    if not isinstance(value, str) or not ENV_REF_RE.match(value):
        if isinstance(value, str) and value.startswith("env:"):
            raise ValueError(f"'{value}' is not a valid reference: write env:NAME with NAME in UPPER_SNAKE_CASE")
        raise ValueError(
            "literal secret: never write a credential in the spec; reference an environment variable "
            "instead, e.g. env:MY_SERVICE_PASSWORD"
        )
    return value


SecretRef = Annotated[
    str,
    BeforeValidator(lambda v: check_env_ref(v) if isinstance(v, str) else v),
    WithJsonSchema({"type": "string", "pattern": ENV_REF_RE.pattern}),
]


def check_value_or_env(value: str) -> str:
    """A plain setting that may also come from the environment (env:NAME)."""
    if value.startswith("env:"):
        check_env_ref(value)
    return value


ValueOrEnv = Annotated[str, AfterValidator(check_value_or_env)]


@dataclass(frozen=True)
class ColumnType:
    """A column type of the portable vocabulary, with its PostgreSQL spelling."""

    name: str
    precision: int | None = None
    scale: int | None = None

    @property
    def postgres(self) -> str:
        if self.name == "decimal":
            return f"numeric({self.precision},{self.scale})" if self.precision is not None else "numeric"
        return POSTGRES_TYPES[self.name]

    def __str__(self) -> str:
        if self.name == "decimal" and self.precision is not None:
            return f"decimal({self.precision},{self.scale})"
        return self.name


POSTGRES_TYPES = {
    "string": "text",
    "integer": "integer",
    "bigint": "bigint",
    "decimal": "numeric",
    "float": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "jsonb",
}
TYPE_ALIASES = {"text": "string", "int": "integer", "numeric": "decimal", "double": "float", "bool": "boolean"}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$")


def parse_column_type(value: Any) -> str:
    """Validate a type of the vocabulary; return its canonical spelling."""
    if not isinstance(value, str):
        raise ValueError(f"a column type is a string such as bigint or decimal(12,2), not {value!r}")
    text = value.strip().lower()
    text = TYPE_ALIASES.get(text, text)
    if text in POSTGRES_TYPES:
        return text
    m = _DECIMAL_RE.match(text)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if not 1 <= precision <= 1000 or scale > precision:
            raise ValueError(f"'{value}': decimal precision must be 1-1000 and scale at most the precision")
        return f"decimal({precision},{scale})"
    if "(" in text and ")" not in text:
        raise ValueError(
            f"'{value}' looks cut off at a comma: inside {{...}} write the type in quotes, e.g. \"decimal(12,2)\""
        )
    from platformgen.spec.suggest import did_you_mean

    hint = did_you_mean(text, [*list(POSTGRES_TYPES), "decimal(p,s)"])
    raise ValueError(
        f"unknown column type '{value}'{hint}; types are: string, integer, bigint, decimal(p,s), float, "
        "boolean, date, timestamp, timestamptz, json"
    )


def column_type(canonical: str) -> ColumnType:
    """The ColumnType for a canonical type string."""
    m = _DECIMAL_RE.match(canonical)
    if m:
        return ColumnType("decimal", int(m.group(1)), int(m.group(2) or 0))
    return ColumnType(canonical)


TypeName = Annotated[
    str,
    BeforeValidator(parse_column_type),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(string|text|integer|int|bigint|float|double|boolean|bool|date|timestamp|timestamptz|json"
            r"|(decimal|numeric)(\(\d+(,\s*\d+)?\))?)$",
        }
    ),
]

_READY_BY_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?:\s*UTC)?$")


def check_ready_by(value: str) -> str:
    """A daily deadline such as '07:00 UTC'."""
    if not _READY_BY_RE.match(value.strip()):
        raise ValueError(f"'{value}' is not a deadline: write HH:MM UTC, e.g. '07:00 UTC'")
    return value.strip()


ReadyBy = Annotated[str, AfterValidator(check_ready_by)]

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(value: str) -> str:
    """A plausible e-mail address."""
    if not _EMAIL_RE.match(value):
        raise ValueError(f"'{value}' is not an e-mail address")
    return value


Email = Annotated[str, AfterValidator(check_email)]


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable regular expression, or None when it is."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    except OverflowError:
        return "invalid regular expression: a repeat count is too large"
    except RecursionError:
        return "invalid regular expression: nested too deeply"
    return None
