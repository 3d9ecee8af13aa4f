"""Readers (and a writer) for question-bank formats other than this project's YAML.

`moodle_xml.read_moodle_xml` and `gift.read_gift` turn a file into `Converted`: plain spec
dicts, exactly what the YAML loader reads (so `load_bank` and `validate_bank` check a
converted bank like any other), the category folder each belongs in, the image files they
use, and a report that names the source line of every question that did not map, or mapped
with something lost. `yaml_writer.write_bank` writes that out as a bank folder.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# Bounds, as the YAML loader has them: a Moodle export carries its images in base64, so
# the file may be larger than a YAML bank file, but not without limit.
MAX_INPUT_BYTES = 100_000_000
MAX_QUESTIONS = 20_000
MAX_IMAGE_BYTES = 2_000_000  # as bank/assets.py MAX_ASSET_BYTES


@dataclass(frozen=True, order=True)
class Note:
    """One line of the conversion report. `skipped`: the question was not converted."""

    line: int
    question: str
    message: str
    skipped: bool = False

    def render(self, source: str) -> str:
        kind = "not converted" if self.skipped else "converted with a change"
        return f"{source}:{self.line}: {self.question}: {kind}: {self.message}"


@dataclass
class ConvertedQuestion:
    spec: dict[str, Any]
    folder: tuple[str, ...]  # category path, one folder per level
    line: int


@dataclass
class Converted:
    source: str
    questions: list[ConvertedQuestion] = field(default_factory=list)
    images: dict[tuple[tuple[str, ...], str], bytes] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    @property
    def skipped(self) -> list[Note]:
        return [n for n in self.notes if n.skipped]

    def report_lines(self) -> list[str]:
        return [n.render(self.source) for n in sorted(self.notes)]


class ConvertError(ValueError):
    """The whole file cannot be read (too large, not XML, ...): nothing is converted."""


_SLUG_DROP = re.compile(r"[^a-z0-9]+")


def slug(text: str, default: str = "question") -> str:
    """A stable id part from a name: 'Moodle acronym (False)' -> 'moodle-acronym-false'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    result = _SLUG_DROP.sub("-", ascii_text.lower()).strip("-")[:60].strip("-")
    return result or default


class IdMaker:
    """Unique question ids across one conversion: the name's slug, then -2, -3 ..."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, name: str) -> str:
        base = slug(name)
        key, n = base, 1
        while key in self.used:
            n += 1
            key = f"{base}-{n}"
        self.used.add(key)
        return key
