"""Command line: `quizapp …` (or `flask --app quizapp …`).

quizapp init-db                      migrate the database to the newest schema
quizapp bank validate PATH           check a bank; print file:line: field: message
quizapp bank import PATH             validate, then import all or nothing
quizapp bank export --to moodle-xml PATH OUT  the bank's questions as Moodle XML (--strict)
quizapp users create USERNAME        create a user (prompts for the password; --update)
quizapp users set-password USERNAME  set a password (prompted, or from standard input)
quizapp users invite --never-signed-in  one-time set-password links as CSV (or --send)
quizapp attempts finalise-expired    finalise attempts past deadline + grace (cron)
quizapp export scores QUIZ_KEY       scores CSV to stdout
quizapp export csv KIND QUIZ_KEY     scores|responses|gradebook|blackboard|canvas|moodle CSV
quizapp demo                         migrate, import question_bank/, demo accounts
quizapp doctor text [--apply]        find (and repair) stored text that cannot be read
quizapp lti platform add --issuer …   register a VLE for LTI 1.3 launches (docs/lti.md)
quizapp lti keys rotate              a new LTI signing key (the previous one kept)
quizapp lti scores send              post due marks to the VLEs' gradebooks (cron)
quizapp lti roster-sync [--apply]    fill the roster from a VLE course (LTI NRPS)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from quizapp.bank.loader import Bank, load_bank
from quizapp.config import private_sqlite_files
from quizapp.context import db_session, grace, now
from quizapp.models import Quiz, Role
from quizapp.services.attempts import finalise_expired
from quizapp.services.bank_import import import_bank, open_for_demo
from quizapp.services.errors import ServiceError
from quizapp.services.exports import csv_lines, data_rows
from quizapp.services.progress import Progress, Throttle
from quizapp.services.users import create_user


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    # Before Alembic's first connection creates the file with the umask's permissions.
    private_sqlite_files(url)
    root = Path(__file__).resolve().parent.parent
    config = Config()
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


# Below this many items a long operation is quick: no progress lines.
PROGRESS_FROM = 200


def progress_printer(what: str, minimum: int = PROGRESS_FROM) -> Progress:
    """A `progress(done, total)` callback that prints `what done/total (n %)…` to standard
    error (so standard output stays clean for CSV), at most every 10 % or 2 seconds, and
    only for big inputs."""
    throttle = Throttle(fraction=0.1, seconds=2.0)

    def progress(done: int, total: int) -> None:
        if total >= minimum and throttle.due(done, total):
            percent = done * 100 // total if total else 100
            click.echo(f"{what} {done}/{total} ({percent} %)…", err=True)

    return progress


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    migrate(current_app.config["QUIZAPP_DATABASE_URL"])
    click.echo("Database is at the newest schema.")


bank_group = click.Group("bank", help="Question banks: validate and import.")


def _load(path: str) -> Bank:
    return load_bank(Path(path), course_zone=current_app.config["QUIZAPP_TIMEZONE"])


@bank_group.command("validate")
@click.argument("path", type=click.Path())
@click.option(
    "--seeds",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Variants to check per question (seed 0 .. N-1, as in the preview page).",
)
@with_appcontext
def bank_validate(path: str, seeds: int) -> None:
    """Check every file under PATH: loading, then every question for SEEDS variants
    (stems and maths render, model answers score full marks, wrong answers do not,
    images exist) and every quiz's draw. Exit 1 on any problem."""
    from quizapp.bank.validate import validate_bank

    bank = _load(path)
    problems = validate_bank(bank, seeds=seeds)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {path}", err=True)
        sys.exit(1)
    click.echo(
        f"{path}: {len(bank.questions)} questions and {len(bank.quizzes)} quizzes, "
        f"{seeds} variants each, no problems."
    )


@bank_group.command("preview")
@click.argument("quiz_key")
@click.option("--seed", default=0, show_default=True, type=int, help="The attempt seed.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="HTML file (default: stdout).")
@click.option("--bank", "bank_path", default=None, help="Bank folder (default: QUIZAPP_BANK_PATH).")
@with_appcontext
def bank_preview(quiz_key: str, seed: int, out: str | None, bank_path: str | None) -> None:
    """Write one variant of QUIZ_KEY, with answers, to a standalone HTML file (staff only).

    The questions are drawn exactly as for an attempt with --seed; no database is used.
    """
    import base64

    from flask import render_template

    from quizapp.bank.assets import ASSET_TYPES, AssetError, resolve_asset, rewrite_images
    from quizapp.bank.preview import PreviewError, preview_quiz

    path = bank_path or current_app.config["QUIZAPP_BANK_PATH"]
    bank = _load(path)
    if not bank.ok:
        for problem in bank.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{path} has problems; run `quizapp bank validate {path}`.")
    base = bank.root if bank.root.is_dir() else bank.root.parent

    def inline_images(file: str) -> Callable[[str], str]:
        def data_uri(src: str) -> str | None:
            try:
                target = resolve_asset(base, file, src)
            except AssetError:
                return None
            kind = ASSET_TYPES[target.suffix.lower()]
            return f"data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()}"

        return lambda fragment: rewrite_images(fragment, data_uri)

    try:
        preview = preview_quiz(bank, quiz_key, seed, inline_images)
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from exc
    css = (Path(current_app.root_path) / "static" / "questions.css").read_text(encoding="utf-8")
    page = render_template("staff/preview_standalone.html", preview=preview, css=css)
    if out is None:
        click.echo(page)
    else:
        Path(out).write_text(page, encoding="utf-8")
        click.echo(
            f"Wrote {out}: {preview.title}, seed {seed}, {len(preview.items)} questions "
            "(staff preview: it shows the answers).",
            err=True,
        )


@bank_group.command("import")
@click.argument("path", type=click.Path())
@with_appcontext
def bank_import(path: str) -> None:
    """Validate PATH, then import it in one transaction (nothing if anything is wrong)."""
    bank = _load(path)
    if not bank.ok:
        for problem in bank.problems:
            click.echo(str(problem), err=True)
        click.echo("Nothing was imported.", err=True)
        sys.exit(1)
    report = import_bank(db_session(), bank)
    click.echo(f"Imported {path}: {report.summary()}")


@bank_group.command("convert")
@click.option("--from", "source_format", required=True, type=click.Choice(["moodle-xml", "gift"]))
@click.argument("in_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def bank_convert(source_format: str, in_file: str, out_dir: str) -> None:
    """Convert a Moodle XML or GIFT file into a YAML bank in OUT_DIR (one folder per
    category, images beside the YAML). Prints what did not convert, or converted with a
    change, as file:line; then run `quizapp bank validate OUT_DIR`."""
    from quizapp.bank.formats import ConvertError
    from quizapp.bank.formats.gift import read_gift
    from quizapp.bank.formats.moodle_xml import read_moodle_xml
    from quizapp.bank.formats.yaml_writer import write_bank

    reader = read_moodle_xml if source_format == "moodle-xml" else read_gift
    try:
        converted = reader(Path(in_file).read_bytes(), in_file)
        written = write_bank(converted, Path(out_dir))
    except (ConvertError, FileExistsError) as exc:
        raise click.ClickException(f"{in_file}: {exc}") from None
    for line in converted.report_lines():
        click.echo(line, err=True)
    click.echo(
        f"{len(converted.questions)} question(s) written to {out_dir} "
        f"({len(written)} files); {len(converted.skipped)} not converted."
    )


@bank_group.command("export")
@click.option("--to", "target_format", required=True, type=click.Choice(["moodle-xml"]))
@click.option("--strict", is_flag=True, help="Exit 1 if any question lost anything.")
@click.argument("bank_dir", type=click.Path(exists=True))
@click.argument("out_file", type=click.Path(dir_okay=False, allow_dash=True))
@with_appcontext
def bank_export(target_format: str, strict: bool, bank_dir: str, out_file: str) -> None:
    """Write the questions of the bank in BANK_DIR as a Moodle XML file (OUT_FILE, or -
    for standard output). Prints, as file:line, each question that was not exported or
    was exported with a change; with --strict, any such line makes the exit status 1."""
    from quizapp.bank.formats.moodle_export import export_bank

    bank = _load(bank_dir)
    if not bank.ok:
        for problem in bank.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{bank_dir} has problems: nothing was exported.")
    exported = export_bank(bank)
    with click.open_file(out_file, "wb") as out:
        out.write(exported.xml)
    for line in exported.report_lines():
        click.echo(line, err=True)
    click.echo(
        f"{len(exported.questions)} question(s) written to {out_file}; "
        f"{len(exported.skipped)} not exported, "
        f"{len(exported.notes) - len(exported.skipped)} change(s) reported; "
        f"{len(exported.quizzes)} quiz file(s) not exported (Moodle XML holds questions).",
        err=True,
    )
    if strict and exported.notes:
        sys.exit(1)


users_group = click.Group("users", help="Accounts.")


@users_group.command("create")
@click.argument("username")
@click.option("--name", default="")
@click.option("--email", default="")
@click.option(
    "--staff/--student",
    default=None,
    help="The role (new accounts: student unless --staff; --update keeps the role unless given).",
)
@click.option("--update", is_flag=True, help="Update the account if it exists instead of refusing.")
@click.option(
    "--no-password",
    is_flag=True,
    help="Set no password (single sign-on, or the user sets one from `users invite`); "
    "with --update, keep the current one.",
)
@click.option("--password", default=None, help="Avoid: it shows in the shell history.")
@with_appcontext
def users_create(
    username: str,
    name: str,
    email: str,
    staff: bool | None,
    update: bool,
    no_password: bool,
    password: str | None,
) -> None:
    """Create a user (or, with --update, update one). The password is prompted for, or
    read from standard input when it is not a terminal; it must follow the password rule
    (at least 12 characters, not a common one, not containing the username)."""
    if not no_password and password is None:
        password = _read_password()
    try:
        user = create_user(
            db_session(),
            username,
            None if no_password else password,
            name=name,
            email=email,
            role=None if staff is None else (Role.STAFF if staff else Role.STUDENT),
            update_existing=update,
            check_password=True,
            now=now(),
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Saved {user.role.value} user {user.username}.")


def _read_password() -> str:
    """Prompted twice on a terminal; otherwise the first line of standard input (for
    scripts: `printf '%s\\n' "$PW" | quizapp users set-password alice`)."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@users_group.command("set-password")
@click.argument("username")
@with_appcontext
def users_set_password(username: str) -> None:
    """Set USERNAME's password (prompted, or the first line of standard input). Every
    session of the account ends and its unused invitation links stop working; audited."""
    from quizapp.services.invitations import find_user, set_password

    session = db_session()
    try:
        user = find_user(session, username)
        password = _read_password()
        set_password(session, user.id, password, now(), by_id=None, method="command_line")
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Password set for {user.username}; every session of theirs has ended.")


@users_group.command("invite")
@click.argument("usernames", nargs=-1)
@click.option("--all", "everyone", is_flag=True, help="Everyone on the roster.")
@click.option("--never-signed-in", is_flag=True, help="Everyone who has never signed in.")
@click.option("--no-password", is_flag=True, help="Everyone who has no password.")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=90),
    default=None,
    help="How long the links work (default: QUIZAPP_INVITATION_DAYS, 7).",
)
@click.option("--send", is_flag=True, help="E-mail the links (needs QUIZAPP_SMTP_HOST).")
@click.option("--by", "by", default=None, help="Staff username: recorded, and named in e-mails.")
@with_appcontext
def users_invite(
    usernames: tuple[str, ...],
    everyone: bool,
    never_signed_in: bool,
    no_password: bool,
    days: int | None,
    send: bool,
    by: str | None,
) -> None:
    """Make one-time set-password links for USERNAMES or a group (--all, --never-signed-in,
    --no-password) and print them as CSV (username,name,email,link,expires) for a mail
    merge; with --send, e-mail them instead and print only those that could not be sent
    (exit 1 then). A new link replaces the account's older unused ones. The roster is
    every student and every staff account without a password; name others explicitly."""
    from zoneinfo import ZoneInfo

    from quizapp.models import User
    from quizapp.services.exports import csv_lines
    from quizapp.services.invitations import (
        Scope,
        csv_rows,
        invite,
        invitees,
        send_invitations,
        users_by_username,
    )
    from quizapp.services.mail import smtp_settings

    chosen = [flag for flag in (everyone, never_signed_in, no_password) if flag]
    if len(chosen) + bool(usernames) != 1:
        raise click.UsageError("Give usernames, or one of --all, --never-signed-in, --no-password.")
    config = current_app.config
    settings = smtp_settings(config)
    base_url = config.get("QUIZAPP_BASE_URL", "")
    if send and settings is None:
        raise click.ClickException("--send needs QUIZAPP_SMTP_HOST (and the other SMTP settings).")
    if send and not base_url:
        raise click.ClickException(
            "--send needs QUIZAPP_BASE_URL: e-mailed links must be absolute."
        )
    if not base_url:
        click.echo(
            "QUIZAPP_BASE_URL is not set: the links are paths; add the site's address.", err=True
        )
    session = db_session()
    actor = None
    if by:
        actor = session.scalars(
            select(User).where(User.username == by, User.role == Role.STAFF)
        ).first()
        if actor is None:
            raise click.ClickException(f"No staff user {by!r}.")
    try:
        if usernames:
            users = users_by_username(session, usernames)
        else:
            scope = (
                Scope.ALL
                if everyone
                else Scope.NEVER_SIGNED_IN
                if never_signed_in
                else Scope.NO_PASSWORD
            )
            users = invitees(session, scope)
        issued = invite(
            session,
            users,
            now(),
            by_id=actor.id if actor else None,
            days=days or int(config.get("QUIZAPP_INVITATION_DAYS") or 7),
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    zone = ZoneInfo(config["QUIZAPP_TIMEZONE"])
    if not send:
        sys.stdout.write("".join(csv_lines(csv_rows(issued, base_url, zone))))
        click.echo(f"{len(issued)} link(s) made.", err=True)
        return
    assert settings is not None
    report = send_invitations(session, issued, settings, base_url, zone, now(), by=actor)
    failed = {d.key: d.error for d in report.failed}
    for item in issued:
        if item.invitation_id in failed:
            click.echo(
                f"not sent to {item.username} <{item.email}>: {failed[item.invitation_id]}",
                err=True,
            )
    if failed:
        sys.stdout.write(
            "".join(
                csv_lines(
                    csv_rows([i for i in issued if i.invitation_id in failed], base_url, zone)
                )
            )
        )
    click.echo(f"E-mailed {report.sent} of {len(issued)} link(s).", err=True)
    if failed:
        sys.exit(1)


@users_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@with_appcontext
def users_import(path: str, dry_run: bool) -> None:
    """Import students from a roster CSV (username, name, email; optional
    extra_time_percent or extra_minutes, groups separated by ';'). Prints every change,
    or every problem as `line N: column: message` (exit 1, nothing applied). Students not
    in the file are left alone; new students get no password (single sign-on)."""
    from quizapp.domain.roster import parse_roster_bytes
    from quizapp.services.roster import apply_roster, plan_roster

    parsed = parse_roster_bytes(Path(path).read_bytes())
    checking = progress_printer("checked")
    plan = plan_roster(db_session(), parsed, checking) if parsed.ok else None
    problems = plan.problems if plan is not None else parsed.problems
    for problem in problems:
        click.echo(f"{path}: {problem}", err=True)
    if plan is None or problems:
        click.echo(f"{len(problems)} problem(s) in {path}; nothing was applied.", err=True)
        sys.exit(1)
    for column in parsed.ignored_columns:
        click.echo(f"ignored column: {column}")
    for student in plan.new + plan.changed:
        parts = [f"{c.field} {c.old!r} -> {c.new!r}" for c in student.changes]
        parts += [f"+group {g}" for g in student.groups_added]
        parts += [f"-group {g}" for g in student.groups_removed]
        if student.is_new and student.accommodation:
            parts.insert(0, f"extra time {student.accommodation[1].describe()}")
        label = "new" if student.is_new else "change"
        click.echo(f"line {student.line}: {label} {student.username}: " + "; ".join(parts))
    counts = plan.counts()
    click.echo(
        f"{counts['created']} new, {counts['updated']} changed, {counts['unchanged']} unchanged; "
        f"{plan.absent} student(s) not in the file left alone."
    )
    if dry_run:
        click.echo("Dry run: nothing was applied.")
        return
    if plan.changes_anything:
        saving = f"Saving {len(plan.new)} new and {len(plan.changed)} changed student(s)…"
        click.echo(saving, err=True)
    try:
        result = apply_roster(db_session(), plan, None, now(), source=Path(path).name)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Imported {path}: {result.summary()}")


attempts_group = click.Group("attempts", help="Attempts.")


@attempts_group.command("finalise-expired")
@with_appcontext
def attempts_finalise_expired() -> None:
    """Finalise and grade every attempt past its deadline plus grace. Safe to run from
    cron on several machines at once, e.g. `* * * * * quizapp attempts finalise-expired`."""
    count = finalise_expired(db_session(), now(), grace())
    click.echo(f"Finalised {count} expired attempt(s).")


# The command's first spelling, kept so existing cron lines go on working (the code
# spells it "finalise" throughout).
attempts_group.add_command(attempts_finalise_expired, "finalize-expired")


@attempts_group.command("verify-receipt")
@click.argument("attempt_id", type=int)
@click.argument("code")
@with_appcontext
def attempts_verify_receipt(attempt_id: int, code: str) -> None:
    """Check a receipt code a student shows against the answers stored now: the code is
    recomputed from the attempt's final answers, so any later change would show."""
    from quizapp.models import Attempt
    from quizapp.services.attempts import current_answers, receipt_code

    session = db_session()
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.receipt is None:
        raise click.ClickException(f"Attempt {attempt_id} does not exist or is not finished.")
    recomputed = receipt_code(attempt, current_answers(session, attempt.id))
    given = code.strip().upper()
    click.echo(f"issued {attempt.receipt}; recomputed from stored answers {recomputed}")
    if given != attempt.receipt or recomputed != attempt.receipt:
        click.echo("MISMATCH: the code or the stored answers differ from what was issued.")
        sys.exit(1)
    click.echo("OK: the stored answers are the ones the student was given a receipt for.")


export_group = click.Group("export", help="CSV exports.")


EXPORT_KINDS = ["scores", "responses", "gradebook", "blackboard", "canvas", "moodle"]


@export_group.command("csv")
@click.argument("kind", type=click.Choice(EXPORT_KINDS))
@click.argument("quiz_key")
@click.option(
    "--column",
    default="",
    help="VLE files: the gradebook column's name (default: the quiz's title).",
)
@click.option(
    "--column-id",
    default="",
    help="VLE files: the id of an existing column to fill (Blackboard's Column ID, "
    "Canvas's assignment id).",
)
@with_appcontext
def export_csv(kind: str, quiz_key: str, column: str = "", column_id: str = "") -> None:
    """Write QUIZ_KEY's scores, responses (one row per attempt and slot) or gradebook CSV,
    or the upload file of a VLE's gradebook (blackboard, canvas, moodle: final scores
    only; provisional ones are left out and listed on standard error), to standard
    output, streamed (a progress count goes to standard error)."""
    from quizapp.services.exports import EXPORTS, VLE_FILES, VleTarget, csv_style, vle_report

    session = db_session()
    quiz = session.scalars(select(Quiz).where(Quiz.key == quiz_key)).first()
    if quiz is None:
        raise click.ClickException(f"No quiz {quiz_key!r}.")
    make_rows = EXPORTS[kind]
    if kind in VLE_FILES:
        try:
            target = VleTarget.parse(column, column_id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        report = vle_report(session, quiz.id, now(), grace())
        for left in report.provisional:
            click.echo(
                f"left out, provisional: {left.username} ({left.pending.marks} mark(s) "
                "still to be marked)",
                err=True,
            )
        make_rows = partial(make_rows, target=target)
    elif column or column_id:
        raise click.ClickException("--column and --column-id are for the VLE files only.")
    total = data_rows(session, kind, quiz.id)
    progress = progress_printer("exported", minimum=1_000)
    style = csv_style(kind)
    rows = -2 if style["bom"] else -1  # the BOM and the header come before the first row
    for chunk in csv_lines(make_rows(session, quiz.id, now(), grace()), **style):
        sys.stdout.write(chunk)
        rows += 1
        if rows > 0:
            progress(rows, max(total, rows))
    click.echo(f"{max(rows, 0)} rows written.", err=True)


@export_group.command("scores")
@click.argument("quiz_key")
@click.pass_context
def export_scores(ctx: click.Context, quiz_key: str) -> None:
    """Same as `export csv scores QUIZ_KEY`."""
    ctx.invoke(export_csv, kind="scores", quiz_key=quiz_key)


overrides_group = click.Group("overrides", help="Per-student and per-group overrides.")


@overrides_group.command("set")
@click.argument("quiz_key")
@click.option("--student", "username", help="The student's username.")
@click.option("--group", "group_name", help="A roster group.")
@click.option(
    "--time-limit",
    type=click.IntRange(min=1),
    help="Time limit in minutes, before the student's accommodation (which applies on top).",
)
@click.option("--no-time-limit", is_flag=True, help="No time limit at all.")
@click.option("--closes", help="A later (or earlier) close, e.g. '2027-01-19 12:00' (course zone).")
@click.option("--no-close", is_flag=True, help="The window never closes for them.")
@click.option("--opens", help="A different open time (course zone).")
@click.option("--attempts", type=click.IntRange(min=1), help="Attempts allowed.")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option(
    "--allow-shorter",
    is_flag=True,
    help="Apply even if running attempts would end earlier (they are listed without it).",
)
@with_appcontext
def overrides_set(
    quiz_key: str,
    username: str | None,
    group_name: str | None,
    time_limit: int | None,
    no_time_limit: bool,
    closes: str | None,
    no_close: bool,
    opens: str | None,
    attempts: int | None,
    reason: str,
    allow_shorter: bool,
) -> None:
    """Give one student or one group different times for QUIZ_KEY. The student's
    accommodation applies on top of an override, as it does to the quiz's own values.
    Running attempts get their new deadline at once (never below the time already
    used); a change that would end any of them earlier is refused, naming each, unless
    --allow-shorter. The open page shows the new deadline within a poll."""
    from zoneinfo import ZoneInfo

    from quizapp.domain.quiz import parse_local_time
    from quizapp.models import User
    from quizapp.services.overrides import (
        OverrideChange,
        ShortensRunningAttempts,
        set_override,
    )

    session = db_session()
    quiz = session.scalars(select(Quiz).where(Quiz.key == quiz_key)).first()
    if quiz is None:
        raise click.ClickException(f"No quiz {quiz_key!r}.")
    user_id = None
    if username:
        user_id = session.scalars(select(User.id).where(User.username == username)).first()
        if user_id is None:
            raise click.ClickException(f"No user {username!r}.")
    zone = ZoneInfo(current_app.config["QUIZAPP_TIMEZONE"])
    try:
        change = OverrideChange(
            opens_at=parse_local_time(opens, zone) if opens else None,
            closes_at=parse_local_time(closes, zone) if closes else None,
            time_limit=timedelta(minutes=time_limit) if time_limit else None,
            max_attempts=attempts,
            reason=reason,
            no_time_limit=no_time_limit,
            no_close=no_close,
        )
        moved = set_override(
            session,
            quiz.id,
            change,
            now(),
            user_id=user_id,
            group_name=group_name or None,
            allow_shorter=allow_shorter,
        )
    except ShortensRunningAttempts as exc:
        for short in exc.shortened:
            before = (
                short.old_deadline.astimezone(zone).strftime("%H:%M:%S %Z")
                if short.old_deadline
                else "no deadline"
            )
            after = short.new_deadline.astimezone(zone).strftime("%H:%M:%S %Z")
            click.echo(f"  {short.username}: ends {before} now, would end {after}", err=True)
        raise click.ClickException(
            f"{exc.message} Nothing was changed. Run again with --allow-shorter to apply it."
        ) from exc
    except (ValueError, ServiceError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    click.echo(f"Override saved; {len(moved)} running attempt(s) got a new deadline.")
    for attempt in moved:
        ends = (
            attempt.deadline_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
            if attempt.deadline_at
            else "never (no time limit and no close)"
        )
        click.echo(f"  attempt {attempt.id}: now ends {ends}")


@click.command("regrade")
@click.argument("quiz_key")
@click.option("--question", "question_key", required=True, help="The question key to regrade.")
@click.option(
    "--mode",
    type=click.Choice(["regrade", "accept", "full_marks"]),
    default="regrade",
    show_default=True,
    help="regrade against the current version; also accept answers; or full marks for all.",
)
@click.option(
    "--accept",
    "accepted",
    multiple=True,
    help="With --mode accept: an option key (choice questions) or exact stored answer; repeat.",
)
@click.option("--never-lower", is_flag=True, help="Keep the current mark where it is higher.")
@click.option("--commit", is_flag=True, help="Write the new marks (default: a dry run).")
@click.option("--by", "by", default=None, help="Staff username recorded as the marker.")
@with_appcontext
def regrade(
    quiz_key: str,
    question_key: str,
    mode: str,
    accepted: tuple[str, ...],
    never_lower: bool,
    commit: bool,
    by: str | None,
) -> None:
    """Regrade QUESTION in every finished attempt of QUIZ_KEY after a corrected import.
    Prints every affected attempt (old and new mark and total) and a summary; writes
    nothing unless --commit (then new mark rows, exact totals and an audit event, in one
    transaction). Attempts in progress are not regraded."""
    from quizapp.domain.scoring import format_mark
    from quizapp.models import User
    from quizapp.services.regrade import RegradeOptions, commit_regrade, parse_mode, plan_regrade

    session = db_session()
    quiz = session.scalars(select(Quiz).where(Quiz.key == quiz_key)).first()
    if quiz is None:
        raise click.ClickException(f"No quiz {quiz_key!r}.")
    actor_id = None
    if by:
        actor_id = session.scalars(
            select(User.id).where(User.username == by, User.role == Role.STAFF)
        ).first()
        if actor_id is None:
            raise click.ClickException(f"No staff user {by!r}.")

    progress = progress_printer("graded")
    try:
        options = RegradeOptions(question_key, parse_mode(mode), accepted, never_lower)
        if commit:
            plan = commit_regrade(
                session, quiz.id, options, actor_id, now(), grace(), progress=progress
            )
        else:
            plan = plan_regrade(session, quiz.id, options, now(), grace(), progress=progress)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    if plan.rows:
        click.echo(
            f"{'student':<20} {'attempt':>7} {'slot':>4} {'old':>7} {'new':>7} {'change':>7} "
            f"{'old total':>9} {'new total':>9}  note"
        )
    for row in plan.rows:
        change = format_mark(row.change)
        click.echo(
            f"{row.username:<20} {row.attempt_number:>7} {row.slot:>4} "
            f"{format_mark(row.old_mark) or '-':>7} {format_mark(row.new_mark):>7} "
            f"{('+' + change) if row.change > 0 else change:>7} "
            f"{format_mark(row.old_total):>9} {format_mark(row.new_total):>9}  {row.note}"
        )
    click.echo(plan.message)
    if plan.rows and not commit:
        click.echo("Dry run: nothing was written. Run again with --commit to apply.")


DEMO_STUDENTS = [
    ("alice", "Alice Adeyemi"),
    ("bob", "Bob Björk"),
    ("chen", "Chen Wei"),
    ("dana", "Dana O'Neill"),
]
DEMO_PASSWORD = "demo-password"


@click.command("demo")
@click.option("--bank", "bank_path", default=None, help="Bank folder (default: question_bank/).")
@with_appcontext
def demo(bank_path: str | None) -> None:
    """Migrate, import the sample bank, open its quizzes now, and create demo accounts.

    Safe to run again: accounts are updated, the bank import is idempotent, and demo
    windows are moved so that they are open now (for the demo only).
    """
    migrate(current_app.config["QUIZAPP_DATABASE_URL"])
    path = bank_path or current_app.config["QUIZAPP_BANK_PATH"]
    bank = _load(path)
    if not bank.ok:
        for problem in bank.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException("The sample bank has problems; nothing was imported.")
    session = db_session()
    report = import_bank(session, bank)
    click.echo(f"Imported {path}: {report.summary()}")
    open_for_demo(session, list(bank.quizzes), now())
    create_user(
        session, "staff", DEMO_PASSWORD, name="Dr Sam Staff", role=Role.STAFF, update_existing=True
    )
    for username, name in DEMO_STUDENTS:
        create_user(session, username, DEMO_PASSWORD, name=name, update_existing=True)
    click.echo("")
    click.echo(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
    click.echo("  staff   staff (examiner)")
    for username, name in DEMO_STUDENTS:
        click.echo(f"  student {username:<8} {name}")


doctor_group = click.Group("doctor", help="Find, and repair, stored data the app cannot read.")


@doctor_group.command("text")
@click.option("--apply", "apply_changes", is_flag=True, help="Repair (default: list only).")
@with_appcontext
def doctor_text(apply_changes: bool) -> None:
    """List every stored answer, answer log entry, audit detail, feedback, reason or name
    holding a character that cannot be stored (a lone surrogate, NUL, a Unicode
    non-character), with its table, id, attempt and position. With --apply, replace each
    such character by U+FFFD in one transaction, audited row by row. A dry run that finds
    something exits 1."""
    from quizapp.services.doctor import repair_text, scan_text

    session = db_session()
    report = scan_text(session)
    for row in report.rows:
        click.echo(str(row))
    if not report.rows:
        click.echo(f"Scanned {report.scanned} values: all text can be stored and read.")
        return
    if not apply_changes:
        click.echo(
            f"{len(report.rows)} row(s) of {report.scanned} scanned need repair. Dry run: "
            "nothing changed; run again with --apply to replace each character by U+FFFD."
        )
        sys.exit(1)
    changed = repair_text(session, report, now())
    click.echo(f"Repaired {changed} row(s); each repair is in the audit log (text_repaired).")


lti_group = click.Group("lti", help="LTI 1.3: platforms (VLEs) and the tool's keys (docs/lti.md).")
lti_platform_group = click.Group("platform", help="The VLEs that may launch quizapp.")
lti_keys_group = click.Group("keys", help="quizapp's own signing keys (/lti/jwks.json).")
lti_group.add_command(lti_platform_group)
lti_group.add_command(lti_keys_group)


@lti_platform_group.command("add")
@click.option("--issuer", required=True, help="The platform's issuer (iss), exactly.")
@click.option("--client-id", required=True, help="The client id the platform gave quizapp.")
@click.option("--auth-login-url", required=True, help="The platform's OIDC authorization URL.")
@click.option("--auth-token-url", required=True, help="The platform's OAuth2 token URL.")
@click.option("--jwks-url", required=True, help="The platform's public keys (JWKS) URL.")
@click.option("--deployment", "deployments", multiple=True, help="A deployment id (repeatable).")
@click.option("--name", default="", help="A label, e.g. 'Blackboard Learn'.")
@with_appcontext
def lti_platform_add(
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    jwks_url: str,
    deployments: tuple[str, ...],
    name: str,
) -> None:
    """Register a platform, or add deployment ids to (and update the URLs of) one
    already registered with the same issuer and client id."""
    from quizapp.services.lti import add_platform, deployment_ids

    try:
        platform = add_platform(
            db_session(),
            issuer=issuer,
            client_id=client_id,
            auth_login_url=auth_login_url,
            auth_token_url=auth_token_url,
            jwks_url=jwks_url,
            deployments=deployments,
            now=now(),
            name=name,
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    known = deployment_ids(db_session(), platform.id)
    click.echo(
        f"Platform {platform.issuer} (client id {platform.client_id}) saved; "
        f"deployments: {', '.join(known) or 'none (launches are refused until one is added)'}."
    )


@lti_platform_group.command("list")
@with_appcontext
def lti_platform_list() -> None:
    """The registered platforms and their deployment ids."""
    from quizapp.services.lti import list_platforms

    for platform, deployments in list_platforms(db_session()):
        click.echo(
            f"{platform.issuer}\tclient {platform.client_id}\t"
            f"deployments {','.join(deployments) or '-'}\t{platform.name}"
        )


@lti_group.command("roster-sync")
@click.option(
    "--context",
    "context",
    default=None,
    help="quizapp's number for the course, or the VLE's context id.",
)
@click.option("--apply", "apply", is_flag=True, help="Apply the changes (default: a dry run).")
@click.option(
    "--instructors-as-staff",
    is_flag=True,
    help="Create staff accounts for the VLE's instructors who have none.",
)
@with_appcontext
def lti_roster_sync(context: str | None, apply: bool, instructors_as_staff: bool) -> None:
    """Fill the roster from a VLE course's membership list (LTI NRPS), through the same
    preview and apply as `users import`. Without --context: the known courses (or the
    only one). Prints every change and what is left alone; writes nothing unless --apply."""
    from quizapp.services.lti import LtiSettings
    from quizapp.services.lti_roster import (
        apply_sync,
        courses,
        find_course,
        match_of,
        plan_sync,
    )

    session = db_session()
    if context is None:
        known = [c for c in courses(session) if c.memberships_url]
        if len(known) != 1:
            for course in known:
                click.echo(f"{course.id}\t{course.context_id}\t{course.label}")
            raise click.ClickException(
                "Name the course with --context (one of the numbers above)."
                if known
                else "No VLE course with a membership list is known yet (launch quizapp from it)."
            )
        context = str(known[0].id)
    settings = LtiSettings.from_config(current_app.config)
    match = match_of(settings.match)
    try:
        course = find_course(session, context)
        plan = plan_sync(
            session, course, now(), match=match, instructors_as_staff=instructors_as_staff
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    for warning in plan.fetched.warnings:
        click.echo(f"warning: {warning}", err=True)
    roster = plan.roster
    for student in roster.new + roster.changed:
        parts = [f"{c.field} {c.old!r} -> {c.new!r}" for c in student.changes]
        parts += [f"+group {g}" for g in student.groups_added]
        parts += [f"-group {g}" for g in student.groups_removed]
        label = "new" if student.is_new else "change"
        click.echo(f"member {student.line}: {label} {student.username}: " + "; ".join(parts))
    for staff in plan.mapped.new_staff:
        click.echo(f"new staff account {staff.username} ({staff.name})")
    for note in plan.mapped.left_alone:
        click.echo(f"left alone: member {note}")
    for note in plan.mapped.skipped:
        click.echo(f"not synced: member {note}")
    counts = roster.counts()
    click.echo(
        f"{course.label}: {len(plan.fetched.members)} member(s) in {plan.fetched.pages} "
        f"page(s); {counts['created']} new, {counts['updated']} changed, "
        f"{counts['unchanged']} unchanged student(s); {plan.new_links} link(s) to make; "
        f"{roster.absent} student(s) not in the list left alone."
    )
    if not apply:
        click.echo("Dry run: nothing was applied (--apply applies it).")
        return
    try:
        result = apply_sync(
            session,
            course,
            None,
            now(),
            expected=plan.fingerprint,
            match=match,
            instructors_as_staff=instructors_as_staff,
        )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Synced: {result.summary()}")


@lti_keys_group.command("rotate")
@with_appcontext
def lti_keys_rotate() -> None:
    """Make a new signing key. The previous one stays published for verification until
    the next rotation retires it (at most two keys are active)."""
    from quizapp.services.lti import active_tool_keys, rotate_tool_key

    key = rotate_tool_key(db_session(), now())
    active = [k.kid for k in active_tool_keys(db_session())]
    click.echo(f"New signing key {key.kid}; published keys: {', '.join(active)}.")


lti_scores_group = click.Group(
    "scores", help="Marks to the VLEs' gradebooks (LTI AGS): the score outbox (docs/lti.md)."
)
lti_group.add_command(lti_scores_group)


@lti_scores_group.command("send")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@with_appcontext
def lti_scores_send(limit: int | None) -> None:
    """Post the scores that are due to the VLEs' gradebooks. Run it from cron or a
    systemd timer, e.g. `* * * * * quizapp lti scores send`; safe on several machines
    at once. A failure that may pass is tried again later (1 minute, doubling, at most
    an hour apart); a score the VLE refuses is kept for staff to resend."""
    from quizapp.services.lti_scores import send_due

    report = send_due(db_session(), now(), limit=limit)
    click.echo(report.summary())
    for error in sorted(set(report.errors))[:10]:
        click.echo(f"  {error}", err=True)


@lti_scores_group.command("status")
@with_appcontext
def lti_scores_status() -> None:
    """Scores not sent yet, per VLE: waiting, held by a release policy, refused."""
    from quizapp.services.lti_scores import due_count, waiting_scores

    rows = waiting_scores(db_session())
    for platform, waiting, held, failed in rows:
        label = platform or "(unnamed VLE)"
        click.echo(f"{label}\twaiting {waiting}\theld {held}\tfailed {failed}")
    click.echo(f"{due_count(db_session(), now())} score(s) due now.")


@lti_scores_group.command("queue")
@click.argument("quiz_key")
@with_appcontext
def lti_scores_queue(quiz_key: str) -> None:
    """Queue the score of every student of QUIZ_KEY whom a linked VLE knows (scores
    finished before a student's first launch from the VLE, or before the link existed)."""
    from quizapp.services.lti_scores import queue_quiz

    session = db_session()
    quiz_id = session.scalars(select(Quiz.id).where(Quiz.key == quiz_key)).first()
    if quiz_id is None:
        raise click.ClickException(f"No quiz {quiz_key!r}.")
    count = queue_quiz(session, quiz_id, now())
    click.echo(f"Queued {count} score(s) for {quiz_key}; `quizapp lti scores send` posts them.")


def register_commands(app: Flask) -> None:
    for command in (
        init_db,
        bank_group,
        users_group,
        attempts_group,
        export_group,
        overrides_group,
        regrade,
        demo,
        doctor_group,
        lti_group,
    ):
        app.cli.add_command(command)


def main() -> None:
    """The `quizapp` console script: Flask's CLI bound to the app factory."""
    from quizapp import create_app

    cli = FlaskGroup(create_app=create_app, add_default_commands=True, help=__doc__)
    cli.main(prog_name="quizapp")
