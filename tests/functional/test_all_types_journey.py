"""A student takes quiz 2, which has every question type, through the pages only.

The attempt page must offer a usable, labelled widget for every type and give no answer
away; a student who fills the form (as a browser would, control by control) with the model
answers gets full marks for everything but the essay, which waits for staff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

from werkzeug.datastructures import MultiDict

from quizapp.models import Attempt
from quizapp.services.catalog import attempt_questions

QUIZ2 = "quiz2-gradients-and-shapes"
QUIZ2_OPENS = datetime(2027, 1, 25, 10, 0, tzinfo=UTC)  # 10:00 GMT


@dataclass
class Control:
    tag: str  # input, select, textarea, button
    type: str
    name: str
    value: str = ""
    id: str = ""
    checked: bool = False
    disabled: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)


class FormParser(HTMLParser):
    """The controls of one form in document order, and the labels of the page."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.action = ""
        self.controls: list[Control] = []
        self.labels: set[str] = set()
        self._select: Control | None = None
        self._option: str | None = None
        self._textarea: Control | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "label" and "for" in a:
            self.labels.add(a["for"])
        if tag == "form" and a.get("id") == self.form_id:
            self.inside, self.action = True, a.get("action", "")
        if not self.inside:
            return
        common = {"name": a.get("name", ""), "id": a.get("id", ""), "disabled": "disabled" in a}
        if tag == "input":
            self.controls.append(
                Control(
                    "input",
                    a.get("type", "text"),
                    value=a.get("value", ""),
                    checked="checked" in a,
                    **common,
                )
            )
        elif tag == "button":
            self.controls.append(
                Control("button", a.get("type", "submit"), value=a.get("value", ""), **common)
            )
        elif tag == "select":
            self._select = Control("select", "select", **common)
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea = Control("textarea", "textarea", **common)
            self.controls.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def parse_form(page: str) -> FormParser:
    parser = FormParser("attempt-form")
    parser.feed(page)
    assert parser.controls, "no attempt form"
    return parser


def fill(controls: list[Control], name: str, values: list[str]) -> None:
    """Fill the controls named `name` with form values, as a student would with the mouse
    or keyboard: tick the matching options, choose in each select, type in each box."""
    mine = [c for c in controls if c.name == name]
    assert mine, f"no control named {name}"
    if all(c.type in ("radio", "checkbox") for c in mine):
        offered = {c.value for c in mine}
        assert set(values) <= offered, (name, values, offered)
        for c in mine:
            c.checked = c.value in values
        return
    assert len(mine) == len(values), f"{name}: {len(mine)} controls for {len(values)} values"
    for control, value in zip(mine, values, strict=True):
        if control.tag == "select":
            offered = [v for v, _ in control.options]
            assert value in offered, (name, value, offered)
            control.options = [(v, v == value) for v, _ in control.options]
        else:
            control.value = value


def post_data(controls: list[Control], action: str) -> list[tuple[str, str]]:
    """What a browser sends for the form, in document order."""
    data: list[tuple[str, str]] = []
    for c in controls:
        if c.disabled or not c.name:
            continue
        if c.tag == "button":
            if c.name == "action" and c.value == action:
                data.append((c.name, c.value))
        elif c.tag == "select":
            chosen = [v for v, selected in c.options if selected] or [c.options[0][0]]
            data.append((c.name, chosen[0]))
        elif c.type in ("radio", "checkbox"):
            if c.checked:
                data.append((c.name, c.value or "on"))
        else:
            data.append((c.name, c.value))
    return data


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match
    return match.group(1)


def test_a_student_answers_every_question_type_through_the_form(
    client, auth, sample_bank, users, session, clock
):
    clock.set(QUIZ2_OPENS.replace(hour=11))
    assert auth.login("alice").status_code == 302
    dashboard = client.get("/").get_data(as_text=True)
    link = re.search(r'href="/quiz/(\d+)"[^>]*>Start Quiz 2: Gradients and shapes<', dashboard)
    assert link, dashboard
    quiz_id = int(link.group(1))

    start_page = client.get(f"/quiz/{quiz_id}").get_data(as_text=True)
    started = client.post(f"/quiz/{quiz_id}/start", data={"csrf_token": _csrf(start_page)})
    assert started.status_code == 302
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/attempt/{attempt_id}").get_data(as_text=True)
    # Bank images are served with a content hash in the URL, never the author's path.
    image = re.search(r'<img[^>]*src="([^"]+)"', page)
    assert image and image.group(1).startswith("/assets/") and image.group(1).endswith("/conv.png")
    served = client.get(image.group(1))
    assert served.status_code == 200 and served.mimetype == "image/png"
    served.close()

    attempt = session.get(Attempt, attempt_id)
    questions = attempt_questions(session, attempt)
    types = {q.type_name for _, q in questions}
    assert types == {
        "single_choice", "multiple_response", "true_false", "numeric", "matrix", "matching",
        "algebraic", "multi_part", "calculated", "short_text", "ordering", "essay",
    }  # fmt: skip

    # A widget for every type, each control labelled.
    assert page.count('class="card question"') == 13
    for kind, count in [("matching", 1), ("ordering", 1), ("multi_part", 1), ("matrix", 2),
                        ("essay", 1), ("number", 2), ("text", 2)]:  # fmt: skip
        assert page.count(f'data-input="{kind}"') == count, kind
    form = parse_form(page)
    answer_controls = [c for c in form.controls if c.name.startswith("slot-")]
    for control in answer_controls:
        if control.type not in ("radio", "checkbox"):  # those sit inside their <label>
            assert control.id in form.labels, f"{control.name} ({control.tag}) has no label"
    assert "Variables: <code>x</code>" in page  # algebraic: what may be typed
    assert "a vector of 4 entries" in page and "a 3&nbsp;×&nbsp;3 matrix" in page
    assert "Write between 80 and 300 words." in page
    assert page.count("<legend") >= 6
    assert " style=" not in page and "onclick" not in page.lower()

    # Nothing answers itself and nothing gives the answer away.
    assert not any(c.checked for c in answer_controls)
    assert all(
        c.value == ""
        for c in answer_controls
        if c.tag in ("input", "textarea") and c.type not in ("radio", "checkbox")
    )
    assert not any(v and sel for c in answer_controls for v, sel in c.options)
    for entry, question in questions:
        body = question.body
        answer = body.describe_answer(entry.variant)
        if question.type_name in (
            "short_text",
            "algebraic",
            "matrix",
            "essay",
            "ordering",
            "matching",
            "calculated",
            "multi_part",
        ):
            assert answer not in page, (question.key, answer)
        model = body.model_response(entry.variant)
        if question.type_name in ("algebraic", "matrix", "calculated", "essay", "short_text"):
            for line in str(model).splitlines():
                if len(line.strip()) > 3:
                    assert line.strip() not in page, (question.key, line)
        if question.type_name == "ordering":  # never shown already in the right order
            letters = body.form_values(entry.variant, model)
            assert letters != sorted(letters)

    # Fill in the model answer of every automatically marked question, leave the essay.
    auto = 0
    for entry, question in questions:
        body = question.body
        if not getattr(type(body), "auto_graded", True):
            continue
        auto += 1
        fill(
            form.controls,
            f"slot-{entry.slot}",
            body.form_values(entry.variant, body.model_response(entry.variant)),
        )
    assert auto == 12

    clock.set(QUIZ2_OPENS.replace(hour=11, minute=40))
    saved = client.post(form.action, data=MultiDict(post_data(form.controls, "submit")))
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/submit"), (
        saved.get_data(as_text=True)
    )
    essay_number = next(n for n, (_, q) in enumerate(questions, 1) if q.type_name == "essay")
    confirm = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert f"You have not answered 1 of 13 questions\n    (question {essay_number})" in confirm

    # The saved answers come back from the database into the same widgets.
    reloaded = parse_form(client.get(f"/attempt/{attempt_id}").get_data(as_text=True))

    def state(controls: list[Control]) -> list[tuple[str, str, bool, list[tuple[str, bool]]]]:
        return [
            (c.name, c.value, c.checked, c.options) for c in controls if c.name.startswith("slot-")
        ]

    assert state(reloaded.controls) == state(form.controls)

    done = client.post(f"/attempt/{attempt_id}/submit", data={"csrf_token": _csrf(confirm)})
    assert done.status_code == 302
    result = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Score: <strong>21</strong> out of 26" in result  # 26 marks, 5 of them the essay
