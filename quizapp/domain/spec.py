"""Reading a YAML-shaped mapping while collecting every problem with its field path.

Parsing never stops at the first problem: staff fix a whole bank in one pass. The
path (for example ``("options", 2, "text")``) lets the bank loader turn each problem
into ``file:line: field: message`` without this module knowing about YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

Path = tuple[str | int, ...]

_MISSING = object()


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top)"


@dataclass(frozen=True)
class SpecProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"


class SpecError(Exception):
    """A specification that cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[SpecProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass
class Problems:
    items: list[SpecProblem] = field(default_factory=list)

    def add(self, path: Path, message: str) -> None:
        self.items.append(SpecProblem(path, message))

    def __bool__(self) -> bool:
        return bool(self.items)


def parse_exact(value: object) -> Fraction:
    """A number from YAML (int, float or string such as '1e-3') as an exact Fraction.

    Floats go through their shortest repr so that YAML's `0.1` means one tenth,
    not the nearest binary float.
    """
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        text = value.strip()
        if "/" in text:
            num, _, den = text.partition("/")
            return Fraction(int(num), int(den))
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
        if not dec.is_finite():
            raise ValueError(f"expected a finite number, got {value!r}")
        return Fraction(dec)
    raise ValueError(f"expected a number, got {type(value).__name__}")


class SpecReader:
    """A view on one mapping of a spec, at `path`, that records problems instead of raising."""

    def __init__(self, data: Any, path: Path = (), problems: Problems | None = None):
        self.problems = problems if problems is not None else Problems()
        self.path = path
        if not isinstance(data, Mapping):
            self.problems.add(path, f"expected a mapping, got {_kind(data)}")
            data = {}
        self.data: Mapping[str, Any] = data
        self._seen: set[str] = set()

    def problem(self, key: str | int | None, message: str) -> None:
        self.problems.add(self.path + ((key,) if key is not None else ()), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self.data.get(key, default)

    def _get(self, key: str, required: bool) -> Any:
        self._seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.problem(key, "is required")
            return _MISSING
        return self.data[key]

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(key, f"expected text, got {_kind(value)}")
            return default
        text = str(value)
        if required and not text.strip():
            self.problem(key, "must not be empty")
        return text

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def integer(
        self, key: str, *, required: bool = True, default: int = 0, minimum: int | None = None
    ) -> int:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"expected a whole number, got {_kind(value)}")
            return default
        if minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}")
            return default
        return value

    def exact(
        self,
        key: str,
        *,
        required: bool = True,
        default: Fraction | None = None,
        positive: bool = False,
        non_negative: bool = False,
    ) -> Fraction | None:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        try:
            number = parse_exact(value)
        except (ValueError, ZeroDivisionError) as exc:
            self.problem(key, str(exc))
            return default
        if positive and number <= 0:
            self.problem(key, "must be greater than 0")
        if non_negative and number < 0:
            self.problem(key, "must not be negative")
        return number

    def one_of(self, key: str, choices: Iterable[str], *, default: str) -> str:
        allowed = list(choices)
        value = self._get(key, False)
        if value is _MISSING:
            return default
        if value not in allowed:
            self.problem(key, f"must be one of {', '.join(allowed)}; got {value!r}")
            return default
        return str(value)

    def items(self, key: str, *, required: bool = True, min_items: int = 0) -> list[Any]:
        value = self._get(key, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.problem(key, f"expected a list, got {_kind(value)}")
            return []
        if len(value) < min_items:
            self.problem(key, f"needs at least {min_items} item{'s' if min_items != 1 else ''}")
        return value

    def text_list(self, key: str) -> list[str]:
        out = []
        for i, item in enumerate(self.items(key, required=False)):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.problems.add(self.path + (key, i), f"expected text, got {_kind(item)}")
            else:
                out.append(str(item))
        return out

    def child(self, key: str | int, data: Any) -> SpecReader:
        return SpecReader(data, self.path + (key,), self.problems)

    def reject_unknown(self, extra_allowed: Iterable[str] = ()) -> None:
        """Report keys nobody read: usually a typo such as `tolerence`."""
        allowed = self._seen | set(extra_allowed)
        for key in self.data:
            if key not in allowed:
                self.problem(str(key), "unknown field")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return type(value).__name__
