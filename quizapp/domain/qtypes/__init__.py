"""Question types, registered by name (the `type:` field of a question's YAML)."""

from __future__ import annotations

from quizapp.domain.qtypes.base import QuestionType

QUESTION_TYPES: dict[str, type[QuestionType]] = {}


def register(cls: type[QuestionType]) -> type[QuestionType]:
    if cls.type_name in QUESTION_TYPES:
        raise ValueError(f"question type {cls.type_name!r} registered twice")
    QUESTION_TYPES[cls.type_name] = cls
    return cls


def _load_builtin_types() -> None:
    # Imported for their @register side effect.
    from quizapp.domain.qtypes import (  # noqa: F401
        algebraic,
        calculated,
        choice,
        essay,
        matching,
        matrix,
        multipart,
        numeric,
        ordering,
        text,
    )


_load_builtin_types()
