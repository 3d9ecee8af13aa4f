"""Previews draw what attempts draw; bank images are resolved safely and addressed by hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from quizapp.bank.assets import (
    AssetError,
    asset_digest,
    find_served_asset,
    image_sources,
    resolve_asset,
    rewrite_images,
)
from quizapp.bank.loader import load_bank
from quizapp.bank.preview import (
    PreviewError,
    canonical_question,
    preview_question,
    preview_quiz,
    question_variant,
)
from quizapp.domain.layout import Candidate, build_layout
from quizapp.domain.questions import canonical_json, question_from_spec

SAMPLE = Path(__file__).resolve().parents[2] / "question_bank"
CONV = SAMPLE / "questions" / "images" / "conv.png"


@pytest.fixture(scope="module")
def bank():  # type: ignore[no-untyped-def]
    loaded = load_bank(SAMPLE)
    assert loaded.ok
    return loaded


def test_a_quiz_preview_is_the_variant_an_attempt_with_that_seed_gets(bank):
    loaded = bank.quizzes["quiz2-gradients-and-shapes"]
    # Attempts use imported versions, rebuilt from canonical JSON (services/catalog.py).
    current = {
        k: Candidate(0, question_from_spec(json.loads(canonical_json(q.spec))))
        for k, q in bank.questions.items()
    }
    for seed in (0, 1, 987654321):
        layout = build_layout(loaded.slots, current, seed)
        preview = preview_quiz(bank, "quiz2-gradients-and-shapes", seed)
        assert [(i.key, i.variant) for i in preview.items] == [
            (e.question_key, e.variant) for e in layout
        ]
        assert preview.total_marks == 26


def test_seed_n_is_the_same_variant_from_the_yaml_and_from_the_imported_version(bank):
    loaded = bank.questions["optim-adam-second-step"]  # parameters lr, g1, g2 (not sorted)
    imported = question_from_spec(json.loads(canonical_json(loaded.spec)))
    seeds = range(20)
    assert [question_variant(canonical_question(loaded), s) for s in seeds] == [
        question_variant(imported, s) for s in seeds
    ]
    # Parameters are drawn in name order, so the YAML's own key order does not matter.
    assert [question_variant(loaded.question, s) for s in seeds] == [
        question_variant(imported, s) for s in seeds
    ]


def test_seeds_give_different_variants_and_the_same_seed_the_same(bank):
    adam = canonical_question(bank.questions["optim-adam-second-step"])
    variants = [question_variant(adam, seed)["params"] for seed in range(10)]
    assert len({tuple(sorted(v.items())) for v in variants}) > 5
    assert question_variant(adam, 3) == question_variant(adam, 3)


def test_a_preview_item_shows_the_answer_and_the_filled_widget(bank):
    question = bank.questions["train-loop-order"].question
    item = preview_question(question, question_variant(question, 4))
    assert item.answer.startswith("Draw a mini-batch")
    # The model answer as form values: the letters of the items in the correct order.
    letters = {c.value: c.html for c in item.view.choices}
    assert "mini-batch" in letters[item.model_values[0]]
    assert "optimizer.step()" in letters[item.model_values[-1]]
    essay = bank.questions["reg-overfitting-essay"].question
    essay_item = preview_question(essay, question_variant(essay, 0))
    assert not essay_item.auto_graded and "early stopping" in essay_item.marking_guide_html


def test_an_unknown_quiz_is_named_with_the_known_ones(bank):
    with pytest.raises(PreviewError, match="quiz1-foundations, quiz2-gradients-and-shapes"):
        preview_quiz(bank, "quiz3", 0)


def test_image_addresses_are_rewritten_in_stem_and_options(bank):
    question = bank.questions["cnn-output-shape-vector"].question
    item = preview_question(
        question, question_variant(question, 0), rewrite=lambda h: rewrite_images(h, str.upper)
    )
    assert 'src="IMAGES/CONV.PNG"' in item.stem_html
    assert 'alt="A 3×3 kernel window' in item.stem_html


def test_image_sources_come_from_markdown_images_only():
    text = "See ![a](images/a.png), [a link](images/b.png) and `![c](c.png)`.\n\n![d](d.gif)"
    assert image_sources(text) == ["images/a.png", "d.gif"]


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("../../etc/passwd.png", "outside the bank"),
        ("/etc/hosts.png", "relative to the YAML"),
        ("https://example.com/x.png", "not in the bank"),
        ("//example.com/x.png", "not in the bank"),
        ("data:image/png;base64,AAAA", "not in the bank"),
        ("images/conv.svg", "SVG can carry script"),
        ("images/missing.png", "not found"),
    ],
)
def test_unservable_images_are_refused_with_a_reason(src, message):
    with pytest.raises(AssetError, match=message):
        resolve_asset(SAMPLE, "questions/gradients.yaml", src)


def test_an_image_resolves_next_to_its_yaml_file():
    assert resolve_asset(SAMPLE, "questions/shapes.yaml", "images/conv.png") == CONV.resolve()
    with pytest.raises(AssetError, match="not found"):
        resolve_asset(SAMPLE, "quizzes/quiz2-gradients-and-shapes.yaml", "images/conv.png")


def test_a_served_asset_needs_its_own_digest_and_a_safe_path(tmp_path):
    digest = hashlib.sha256(CONV.read_bytes()).hexdigest()[:16]
    assert asset_digest(CONV) == digest
    assert find_served_asset(SAMPLE, digest, "questions/images/conv.png") == CONV.resolve()
    assert find_served_asset(SAMPLE, "0" * 16, "questions/images/conv.png") is None
    assert find_served_asset(SAMPLE, digest, "questions/../questions/images/conv.png") is None
    assert find_served_asset(SAMPLE, digest, "/work/question_bank/x.png") is None
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for students")
    outside = hashlib.sha256(secret.read_bytes()).hexdigest()[:16]
    bank = tmp_path / "bank"
    bank.mkdir()
    (bank / "link.png").symlink_to(secret)  # a symlink out of the bank is outside too
    assert find_served_asset(bank, outside, "link.png") is None
    (bank / "notes.yaml").write_text("answer: 42")
    yaml_digest = hashlib.sha256(b"answer: 42").hexdigest()[:16]
    assert find_served_asset(bank, yaml_digest, "notes.yaml") is None  # images only


def test_an_edited_image_gets_a_new_digest(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    first = asset_digest(image)
    image.write_bytes(b"two, longer")
    assert asset_digest(image) != first
