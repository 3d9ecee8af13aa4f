"""Spec dicts → a YAML bank file a person would have written.

Keys in the order of the documentation (id, type, title, tags, marks, stem, the type's
fields, feedback), multi-line text as literal blocks (`|`), short lists such as tags and
parameter values in flow style (`[a, b]`), nothing quoted that need not be.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from quizapp.bank.formats import Converted

FIRST_KEYS = ("id", "type", "title", "tags", "marks", "stem")
LAST_KEYS = ("feedback",)
FLOW_LISTS = frozenset({"tags", "values", "range", "wrong_answers", "distractors"})


def _node(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        order = [k for k in FIRST_KEYS if k in value]
        order += [k for k in value if k not in FIRST_KEYS and k not in LAST_KEYS]
        order += [k for k in LAST_KEYS if k in value]
        for k in order:
            out[k] = _node(value[k], k)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_node(v) for v in value)
        if key in FLOW_LISTS and all(
            isinstance(v, int | float) or (isinstance(v, str) and "\n" not in v and len(v) < 40)
            for v in value
        ):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and "\n" in value:
        # A literal block keeps the text exactly, unless lines end in spaces (YAML would
        # then need quotes anyway).
        lines = value.split("\n")
        if not any(line != line.rstrip() for line in lines):
            return LiteralScalarString(value)
    return value


def dump_questions(questions: list[dict[str, Any]]) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump({"questions": [_node(q) for q in questions]}, stream)
    # One blank line between questions, as the documentation's examples read.
    text = stream.getvalue().replace("\n  - id: ", "\n\n  - id: ")
    return text.replace("questions:\n\n", "questions:\n", 1)


def write_bank(converted: Converted, out_dir: Path) -> list[Path]:
    """One `questions.yaml` per category folder, images in `images/` beside it.
    Returns the files written. Refuses to overwrite an existing questions file."""
    by_folder: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for question in converted.questions:
        by_folder.setdefault(question.folder, []).append(question.spec)
    written: list[Path] = []
    for folder, specs in sorted(by_folder.items()):
        target = out_dir.joinpath(*folder, "questions.yaml")
        if target.exists():
            raise FileExistsError(f"{target} exists; convert into an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_questions(specs), encoding="utf-8")
        written.append(target)
    for (folder, name), data in sorted(converted.images.items()):
        path = out_dir.joinpath(*folder, "images", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
