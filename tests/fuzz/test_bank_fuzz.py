"""Property-based fuzzing of the bank loader: any file, however odd, gives a list of
located problems or a clean bank, never an exception."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from quizapp.bank.loader import load_bank

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "single_choice",
            "numeric",
            "matrix",
            "calculated",
            "algebraic",
            "q1",
            "2027-01-01 10:00",
            "1e-3",
        ]
    ),
)
keys = st.sampled_from(
    [
        "id",
        "type",
        "stem",
        "options",
        "text",
        "correct",
        "answer",
        "tolerance",
        "marks",
        "tags",
        "quiz",
        "questions",
        "slots",
        "question",
        "pool",
        "draw",
        "opens",
        "closes",
        "open_for",
        "time_limit",
        "parameters",
        "formula",
        "pairs",
        "items",
        "parts",
        "variables",
        "x",
    ]
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)
settings_ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _dump(data) -> str:
    buffer = io.StringIO()
    YAML().dump(data, buffer)
    return buffer.getvalue()


@settings_
@given(documents)
def test_any_yaml_structure_is_loaded_or_reported(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("bank")
    (folder / "bank.yaml").write_text(_dump({"questions": [document], "quiz": document}))
    bank = load_bank(folder)
    for problem in bank.problems:
        assert problem.file == "bank.yaml" and problem.line >= 0 and problem.field


@settings_
@given(st.text(max_size=400))
def test_any_text_is_loaded_or_reported(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("bank")
    (folder / "bank.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    bank = load_bank(folder)
    assert bank.ok or all(p.file == "bank.yaml" for p in bank.problems)
