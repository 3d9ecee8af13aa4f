"""Staff upload a bank in the browser's pages (upload → report → preview → import), through
the Flask test client: a bank with an error gets its file:line and nothing is stored; the
fixed bank imports, as new question versions, audited; the carried archive cannot be
altered on its way back; the larger body limit is for staff only."""

from __future__ import annotations

import base64
import io
import re
from html import unescape

from sqlalchemy import func, select

from quizapp.models import AuditEvent, BankAsset, Question, QuestionVersion
from quizapp.web.bank_upload import BODY_LIMIT
from tests.functional.helpers import csrf_of
from tests.upload_banks import BROKEN_LINE, QUESTIONS, bank_files, bank_zip, zip_of

INDEX = "/staff/bank-upload/"


def _upload_zip(client, data: bytes, filename: str = "bank.zip"):
    token = csrf_of(client.get(INDEX).get_data(as_text=True))
    return client.post(
        "/staff/bank-upload/check",
        data={"csrf_token": token, "archive_file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def _upload_folder(client, files: dict[str, bytes]):
    token = csrf_of(client.get(INDEX).get_data(as_text=True))
    return client.post(
        "/staff/bank-upload/check",
        data={
            "csrf_token": token,
            "folder": [(io.BytesIO(data), name) for name, data in files.items()],
        },
        content_type="multipart/form-data",
    )


def _carried(page: str) -> dict[str, str]:
    """The hidden fields of the report's (or preview's) form."""
    fields = {}
    for tag in re.findall(r'<input\b[^>]*type="hidden"[^>]*>', page):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag)
        fields[name] = unescape(value.group(1)) if value else ""
    return fields


def _counts(session) -> tuple[int, int, int]:
    session.rollback()  # a fresh snapshot: the app committed in its own session
    return (
        session.scalar(select(func.count()).select_from(Question)),
        session.scalar(select(func.count()).select_from(QuestionVersion)),
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "bank_upload")
        ),
    )


def test_the_staff_index_links_to_the_upload_page(client, auth, users):
    auth.login("staff")
    assert 'href="/staff/bank-upload/"' in client.get("/staff/").get_data(as_text=True)
    page = client.get(INDEX).get_data(as_text=True)
    assert "webkitdirectory" in page and 'type="file"' in page


def test_a_bank_with_an_error_is_reported_with_file_and_line_and_nothing_is_stored(
    client, auth, users, session
):
    auth.login("staff")
    response = _upload_zip(client, bank_zip(broken=True))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f"{BROKEN_LINE}: questions[0].tolerence: unknown field" in page
    assert "1 problem: nothing can be imported" in page
    assert "Import this bank" not in page
    assert "upload-bank/README.md" in page  # left out, and said so
    assert _counts(session) == (0, 0, 0)

    # Forcing the import of the broken bank is refused; still nothing stored.
    fields = _carried(page)
    refused = client.post("/staff/bank-upload/import", data=fields)
    assert refused.status_code == 400
    assert "1 problem(s); nothing was imported" in refused.get_data(as_text=True)
    assert _counts(session) == (0, 0, 0)


def test_the_fixed_bank_imports_as_new_versions_audited(client, auth, users, session):
    auth.login("staff")
    response = _upload_zip(client, bank_zip(), "upload-bank.zip")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "No problems" in page and "Import this bank" in page
    assert _counts(session) == (0, 0, 0)

    imported = client.post("/staff/bank-upload/import", data=_carried(page))
    assert imported.status_code == 302
    landing = client.get(imported.headers["Location"]).get_data(as_text=True)
    assert "Bank imported from upload-bank.zip: questions: 2 new" in landing
    assert _counts(session) == (2, 2, 1)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "bank_upload")).one()
    assert event.actor_id == users["staff"]
    assert event.details["new_questions"] == 2
    assert event.details["by"] == "staff"
    assert event.details["source"] == "upload-bank.zip"
    assert event.details["questions"] == ["upload-choice", "upload-sum"]
    # The image went in with the question (frozen by its digest), as from the CLI.
    assert session.scalar(select(func.count()).select_from(BankAsset)) == 1
    version = session.scalars(
        select(QuestionVersion).where(QuestionVersion.question_key == "upload-sum")
    ).one()
    assert version.source == "upload-bank/questions/upload.yaml:2"

    # A changed question is a new version; the unchanged one is left alone.
    changed = {
        **bank_files(),
        "upload-bank/questions/upload.yaml": QUESTIONS.replace("2 + 3", "3 + 2")
        .replace("answer: 5", "answer: 5\n    feedback: Same sum.")
        .encode(),
    }
    page = _upload_zip(client, zip_of(changed)).get_data(as_text=True)
    client.post("/staff/bank-upload/import", data=_carried(page))
    assert _counts(session) == (2, 3, 2)
    assert "1 changed" in client.get(INDEX).get_data(as_text=True)


def test_a_folder_upload_works_like_a_zip(client, auth, users, session):
    auth.login("staff")
    response = _upload_folder(client, bank_files())
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "folder upload-bank" in page
    assert client.post("/staff/bank-upload/import", data=_carried(page)).status_code == 302
    assert _counts(session)[:2] == (2, 2)


def test_any_question_of_the_uploaded_bank_previews_for_any_seed(client, auth, users, session):
    auth.login("staff")
    page = _upload_zip(client, bank_zip(broken=True)).get_data(as_text=True)
    fields = {**_carried(page), "key": "upload-choice", "seed": "17"}
    preview = client.post("/staff/bank-upload/preview", data=fields)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert "seed 17" in html and "Which is a prime?" in html
    assert "upload-bank/questions/upload.yaml:12" in html
    # The next seed, from the preview page's own form.
    after = client.post(
        "/staff/bank-upload/preview",
        data={**_carried(html), "key": "upload-choice", "seed": "17", "step": "next"},
    )
    assert "seed 18" in after.get_data(as_text=True)
    # A question that did not load has no preview (the report says why).
    missing = client.post("/staff/bank-upload/preview", data={**fields, "key": "upload-sum"})
    assert missing.status_code == 404
    # Back to the report: checked again from the carried archive.
    back = client.post("/staff/bank-upload/check", data=_carried(html))
    assert back.status_code == 400 and BROKEN_LINE in back.get_data(as_text=True)
    assert _counts(session) == (0, 0, 0)

    fixed = _upload_zip(client, bank_zip()).get_data(as_text=True)
    shown = client.post(
        "/staff/bank-upload/preview", data={**_carried(fixed), "key": "upload-sum", "seed": "0"}
    ).get_data(as_text=True)
    assert 'src="data:image/png;base64,' in shown  # the image from the uploaded files


def test_an_altered_archive_or_token_is_refused(client, auth, users, session):
    auth.login("staff")
    page = _upload_zip(client, bank_zip()).get_data(as_text=True)
    fields = _carried(page)
    other = base64.b64encode(
        zip_of({"bank/q.yaml": QUESTIONS.replace("2 + 3", "1 + 1").encode()})
    ).decode()
    for altered in ({**fields, "archive": other}, {**fields, "token": fields["token"][:-2] + "xx"}):
        response = client.post("/staff/bank-upload/import", data=altered)
        assert response.status_code == 400
        assert "altered" in response.get_data(as_text=True)
    assert _counts(session) == (0, 0, 0)


def test_a_hostile_zip_is_refused_on_the_upload_page(client, auth, users, session):
    auth.login("staff")
    response = _upload_zip(client, zip_of({"../../evil.yaml": b"questions: []\n"}))
    assert response.status_code == 400
    assert "paths with &#39;..&#39; are refused" in response.get_data(as_text=True)
    response = _upload_zip(client, b"not a zip")
    assert response.status_code == 400
    assert "not a readable zip" in response.get_data(as_text=True)


def test_the_larger_body_limit_is_for_staff_only(client, auth, users, app):
    big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    # Anonymous: the app's own limit answers first (413), never the upload's.
    anonymous = client.post(
        "/staff/bank-upload/check",
        data={"archive_file": (io.BytesIO(big), "bank.zip")},
        content_type="multipart/form-data",
    )
    assert anonymous.status_code == 413
    auth.login("alice")
    student = client.post(
        "/staff/bank-upload/check",
        data={"archive_file": (io.BytesIO(big), "bank.zip")},
        content_type="multipart/form-data",
    )
    assert student.status_code == 413
    assert BODY_LIMIT > 20_000_000
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").get_data(as_text=True))})
    auth.login("staff")
    staff = _upload_zip(client, big)
    assert staff.status_code == 400  # read, and refused as not a zip
    assert "not a readable zip" in staff.get_data(as_text=True)
