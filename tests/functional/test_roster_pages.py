"""Staff import a roster through the pages (upload → preview → confirm), and the CLI."""

from __future__ import annotations

import io
import re
from fractions import Fraction
from html import unescape
from pathlib import Path

from sqlalchemy import func, select

from quizapp.models import AuditEvent, Role, User
from tests.conftest import PASSWORD
from tests.functional.helpers import csrf_of

DATA = Path(__file__).resolve().parent.parent / "data" / "roster"


def _upload(client, data: bytes, filename: str = "students.csv"):
    token = csrf_of(client.get("/staff/roster/").get_data(as_text=True))
    return client.post(
        "/staff/roster/preview",
        data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def _confirm_fields(page: str) -> dict[str, str]:
    form = page[page.index('action="/staff/roster/apply"') :]
    form = form[: form.index("</form>")]
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]*)"', tag, re.S)
        fields[name] = unescape(value.group(1)) if value else ""
    return fields


def _user(app, username: str) -> User | None:
    with app.extensions["quizapp_db"].new_session() as session:
        return session.scalars(select(User).where(User.username == username)).first()


def test_staff_upload_preview_confirm(app, client, auth, users):
    auth.login("staff")
    assert "/staff/roster/" in client.get("/staff/").get_data(as_text=True)
    preview = _upload(client, (DATA / "students_bom_crlf.csv").read_bytes())
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200, page
    assert "Nothing has been applied yet" in page
    assert "Zoë Martin" in page and "陈伟" in page and "+50% time" in page
    assert "will be left alone" in page
    assert _user(app, "zoe") is None, "the preview applies nothing"

    fields = _confirm_fields(page)
    # Browsers send form fields with CRLF line ends: the digest still matches.
    fields["csv_text"] = fields["csv_text"].replace("\n", "\r\n")
    done = client.post("/staff/roster/apply", data=fields, content_type="multipart/form-data")
    assert done.status_code == 302, done.get_data(as_text=True)
    roster_page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "3 new, 0 updated" in roster_page
    assert "/staff/audit?student=zoe" in roster_page
    assert "seminar-a, lab-1" in roster_page or "lab-1, seminar-a" in roster_page
    zoe = _user(app, "zoe")
    assert zoe is not None and zoe.time_factor == Fraction(5, 4) and zoe.password_hash is None

    # The same file again: nothing to apply.
    again = _upload(client, (DATA / "students_bom_crlf.csv").read_bytes()).get_data(as_text=True)
    assert "nothing to apply" in again
    assert 'action="/staff/roster/apply"' not in again


def test_a_bad_file_shows_every_problem_and_applies_nothing(app, client, auth, users):
    auth.login("staff")
    response = _upload(client, (DATA / "one_bad_row.csv").read_bytes())
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "2 problems: nothing was applied" in page
    assert 'line 3: username: "bad user" contains a space' in page
    assert 'line 4: extra_time_percent: "abc" is not a number' in page
    assert 'action="/staff/roster/apply"' not in page
    assert _user(app, "ok1") is None


def test_pasted_text_works_too(app, client, auth, users):
    auth.login("staff")
    token = csrf_of(client.get("/staff/roster/").get_data(as_text=True))
    page = client.post(
        "/staff/roster/preview",
        data={"csrf_token": token, "text": "username,name,email\npat,Pat,pat@x.org\n"},
    ).get_data(as_text=True)
    assert "1 new" in page


def test_a_tampered_confirmation_is_refused(app, client, auth, users):
    auth.login("staff")
    page = _upload(client, b"username,name,email\nzed,Zed,z@x.org\n").get_data(as_text=True)
    fields = _confirm_fields(page)
    fields["csv_text"] = fields["csv_text"].replace("zed", "mallory")
    response = client.post("/staff/roster/apply", data=fields)
    assert response.status_code == 400
    assert _user(app, "mallory") is None and _user(app, "zed") is None


def test_students_get_403(client, auth, users):
    auth.login("alice")
    assert client.get("/staff/roster/").status_code == 403
    token = csrf_of(client.get("/").get_data(as_text=True))
    response = client.post(
        "/staff/roster/preview",
        data={"csrf_token": token, "text": "username,name,email\nx,X,x@x.org\n"},
    )
    assert response.status_code == 403


def test_a_post_without_csrf_token_is_400(app, client, auth, users):
    auth.login("staff")
    response = client.post(
        "/staff/roster/preview",
        data={"file": (io.BytesIO(b"username,name,email\nx,X,x@x.org\n"), "s.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert client.post("/staff/roster/apply", data={"csv_text": "x"}).status_code == 400
    assert client.post("/staff/roster/staff", data={"username": "evil"}).status_code == 400
    assert _user(app, "x") is None and _user(app, "evil") is None


def test_a_large_roster_is_accepted_from_staff(app, client, auth, users):
    """Larger than the app's default body limit (256 KB), within the roster's 5 MB."""
    auth.login("staff")
    rows = "".join(
        f"student{i:05d},Student {i},s{i}@example.ac.uk,,,g{i % 7}\n" for i in range(6000)
    )
    data = ("username,name,email,extra_time_percent,extra_minutes,groups\n" + rows).encode()
    assert len(data) > 256 * 1024
    page = _upload(client, data).get_data(as_text=True)
    assert "6000 new" in page
    done = client.post(
        "/staff/roster/apply", data=_confirm_fields(page), content_type="multipart/form-data"
    )
    assert done.status_code == 302
    with app.extensions["quizapp_db"].new_session() as session:
        assert session.scalar(select(func.count(User.id)).where(User.role == Role.STUDENT)) == 6003


def test_staff_create_a_staff_account(app, client, auth, users):
    auth.login("staff")
    token = csrf_of(client.get("/staff/roster/").get_data(as_text=True))
    short = client.post(
        "/staff/roster/staff",
        data={
            "csrf_token": token,
            "username": "marker",
            "name": "Mo",
            "email": "m@x.org",
            "password": "short",
            "confirm": "short",
        },
    )
    assert short.status_code == 400 and _user(app, "marker") is None
    done = client.post(
        "/staff/roster/staff",
        data={
            "csrf_token": token,
            "username": "marker",
            "name": "Mo",
            "email": "m@x.org",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert done.status_code == 302
    marker = _user(app, "marker")
    assert marker is not None and marker.role is Role.STAFF
    with app.extensions["quizapp_db"].new_session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "staff_created")
        ).one()
        assert event.subject_id == marker.id and event.actor_id == users["staff"]


def test_cli_users_import_dry_run_then_apply(app, users, tmp_path):
    runner = app.test_cli_runner()
    good = DATA / "students_bom_crlf.csv"
    dry = runner.invoke(args=["users", "import", str(good), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "line 2: new zoe: extra time +25% time; +group seminar-a; +group lab-1" in dry.output
    assert "3 new, 0 changed, 0 unchanged" in dry.output
    assert "Dry run: nothing was applied." in dry.output
    assert _user(app, "zoe") is None

    done = runner.invoke(args=["users", "import", str(good)])
    assert done.exit_code == 0, done.output
    assert "Imported" in done.output and _user(app, "zoe") is not None
    again = runner.invoke(args=["users", "import", str(good)])
    assert "0 new, 0 changed, 3 unchanged" in again.output

    bad = runner.invoke(args=["users", "import", str(DATA / "one_bad_row.csv")])
    assert bad.exit_code == 1
    assert 'one_bad_row.csv: line 4: extra_time_percent: "abc" is not a number' in bad.output
    assert "nothing was applied" in bad.output
    assert _user(app, "ok1") is None
