"""Staff preview pages, bank images behind login, and the `bank validate|preview` commands."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from quizapp.bank.loader import load_bank
from quizapp.bank.preview import canonical_question, preview_quiz, question_variant
from tests.conftest import SAMPLE_BANK, Auth

CONV = SAMPLE_BANK / "questions" / "images" / "conv.png"
DIGEST = hashlib.sha256(CONV.read_bytes()).hexdigest()[:16]
IMAGE_URL = f"/assets/{DIGEST}/questions/images/conv.png"  # from the bank folder
# As imported (frozen with its version, kept in the database): the whole SHA-256.
FROZEN_URL = f"/assets/{hashlib.sha256(CONV.read_bytes()).hexdigest()}/questions/images/conv.png"
BROKEN = Path(__file__).resolve().parents[1] / "data" / "broken_bank"


@pytest.fixture
def bank_app(app):  # type: ignore[no-untyped-def]
    app.config["QUIZAPP_BANK_PATH"] = str(SAMPLE_BANK)
    return app


def test_staff_list_every_imported_question(client, auth, users, sample_bank, bank_app):
    auth.login("staff")
    page = client.get("/staff/preview/").get_data(as_text=True)
    links = re.findall(r'href="/staff/preview/question/([a-z0-9_.-]+)"', page)
    assert sorted(links) == sorted(sample_bank.questions)
    assert "questions/gradients.yaml:" in page  # where each version came from


def test_a_question_preview_shows_the_variant_disabled_then_the_answer(
    client, auth, users, sample_bank, bank_app
):
    auth.login("staff")
    page = client.get("/staff/preview/question/optim-adam-second-step?seed=7").get_data(
        as_text=True
    )
    # The variant `bank validate` calls seed 7 (same question as the imported version).
    question = canonical_question(sample_bank.questions["optim-adam-second-step"])
    variant = question_variant(question, 7)
    params = variant["params"]
    assert f"g_1 = {params['g1']}" in page and f"g_2 = {params['g2']}" in page
    assert re.search(
        r'<input type="text" inputmode="decimal" id="slot-1" name="slot-1"[^>]*disabled', page
    )
    assert "Staff preview" in page and "Correct answer" in page
    assert question.body.describe_answer(variant) in page
    assert 'href="/staff/preview/question/optim-adam-second-step?seed=6"' in page
    assert 'href="/staff/preview/question/optim-adam-second-step?seed=8"' in page
    assert re.search(
        r'<form method="get" action="/staff/preview/question/optim-adam-second-step">', page
    )
    assert 'name="seed"' in page and 'value="7"' in page
    # Another seed, another variant: the page follows the seed.
    other = client.get("/staff/preview/question/optim-adam-second-step?seed=8").get_data(
        as_text=True
    )
    assert question.body.describe_answer(question_variant(question, 8)) in other


@pytest.mark.parametrize("seed", ["-5", "abc", ""])
def test_a_bad_seed_means_seed_0(client, auth, users, sample_bank, bank_app, seed):
    auth.login("staff")
    page = client.get(f"/staff/preview/question/train-loop-order?seed={seed}").get_data(
        as_text=True
    )
    assert "seed 0" in page and "Previous seed" not in page


def test_every_widget_renders_in_the_preview(client, auth, users, sample_bank, bank_app):
    auth.login("staff")
    for key, loaded in sample_bank.questions.items():
        response = client.get(f"/staff/preview/question/{key}?seed=3")
        assert response.status_code == 200, key
        page = response.get_data(as_text=True)
        answer_controls = re.findall(
            r"<(?:input|select|textarea)\b[^>]*name=\"slot-1\"[^>]*>", page
        )
        assert answer_controls, key
        assert all("disabled" in c for c in answer_controls), key
        if loaded.question.type_name == "matching":
            assert len(re.findall(r"<select\b", page)) == 2 * 4  # student view + model answer
            assert page.count("selected>") >= 4


def test_the_preview_is_for_staff_only(client, auth, users, sample_bank, bank_app):
    assert client.get("/staff/preview/").status_code == 302  # to the login page
    auth.login("alice")
    assert client.get("/staff/preview/").status_code == 403
    assert client.get("/staff/preview/question/train-loop-order").status_code == 403


def test_an_unknown_question_is_not_found(client, auth, users, sample_bank, bank_app):
    auth.login("staff")
    assert client.get("/staff/preview/question/no-such-question").status_code == 404


def test_images_are_served_by_content_hash_to_logged_in_users(
    client, auth, users, sample_bank, bank_app
):
    assert client.get(IMAGE_URL).status_code == 302  # not logged in: to the login page
    auth.login("staff")
    page = client.get("/staff/preview/question/cnn-output-shape-vector").get_data(as_text=True)
    assert f'<img src="{FROZEN_URL}" alt="A 3×3 kernel window' in page
    other = client.application.test_client()  # a student, in a second browser
    Auth(other).login("alice")
    for url in (FROZEN_URL, IMAGE_URL):  # as imported, and from the bank folder
        with other.get(url) as response:  # closes the streamed file
            assert response.status_code == 200 and response.mimetype == "image/png"
            assert response.data == CONV.read_bytes()
            assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    for path in (
        f"/assets/{'0' * 16}/questions/images/conv.png",  # stale or guessed digest
        f"/assets/{DIGEST}/questions/images/../images/conv.png",
        f"/assets/{DIGEST}/questions/images/%2e%2e/%2e%2e/quizzes/quiz2-gradients-and-shapes.yaml",
        f"/assets/{DIGEST}/questions/gradients.yaml",
        f"/assets/{DIGEST}//etc/passwd",
    ):
        assert other.get(path, follow_redirects=True).status_code == 404, path


def test_the_bank_preview_command_writes_a_standalone_staff_page(bank_app, tmp_path):
    out = tmp_path / "preview.html"
    result = bank_app.test_cli_runner().invoke(
        args=["bank", "preview", "quiz2-gradients-and-shapes", "--seed", "5", "--out", str(out),
              "--bank", str(SAMPLE_BANK)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "STAFF PREVIEW: contains the answers" in html
    assert html.count('class="card question"') == 13
    assert 'src="data:image/png;base64,' in html and "/assets/" not in html
    assert "<link" not in html and "<script" not in html  # one file, nothing to fetch
    expected = preview_quiz(load_bank(SAMPLE_BANK), "quiz2-gradients-and-shapes", 5)
    shown = re.findall(r'id="(q\d+)-title"', html)
    assert shown == [f"q{i}" for i in range(1, 14)]
    for item in expected.items:
        assert item.answer_html in html, item.key


def test_the_bank_preview_command_refuses_an_unknown_quiz(bank_app):
    result = bank_app.test_cli_runner().invoke(
        args=["bank", "preview", "quiz9", "--bank", str(SAMPLE_BANK)]
    )
    assert result.exit_code == 1
    assert "no quiz 'quiz9'" in result.output and "quiz2-gradients-and-shapes" in result.output


def test_bank_validate_prints_every_problem_and_exits_1(bank_app):
    result = bank_app.test_cli_runner().invoke(
        args=["bank", "validate", str(BROKEN), "--seeds", "5"]
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert (
        "questions/broken.yaml:13: questions[1].stem: image 'images/missing.png' not found"
        in lines[0]
    )
    assert lines[-1] == f"13 problem(s) in {BROKEN}"
    assert all(re.match(r"^[\w/.-]+:\d+: [^:]+: ", line) for line in lines[:-1])


def test_bank_validate_passes_the_sample_bank(bank_app):
    result = bank_app.test_cli_runner().invoke(args=["bank", "validate", str(SAMPLE_BANK)])
    assert result.exit_code == 0, result.output
    assert "31 questions and 2 quizzes, 50 variants each, no problems." in result.output
