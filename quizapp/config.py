"""Settings from the environment (QUIZAPP_*), with safe defaults for one machine."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any


def _secret_key(instance: Path) -> str:
    """QUIZAPP_SECRET_KEY, or a key generated once into instance/ (never committed)."""
    if key := os.environ.get("QUIZAPP_SECRET_KEY"):
        return key
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two workers starting at once cannot write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip()


def private_instance(instance: Path) -> None:
    """The instance folder holds the secret key and, by default, the SQLite database
    (password hashes, every answer): readable by its owner only, whatever the umask."""
    instance.mkdir(parents=True, exist_ok=True)
    _restrict(instance, 0o700)


def private_sqlite_files(url: str) -> None:
    """Create an SQLite database file (and tighten one that exists) as 0600 before the
    driver opens it. SQLite gives its -wal and -shm files the permissions of the
    database file, so this covers all three; existing ones are tightened too."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if str(path).startswith("file:"):
        return  # a URI filename: its owner chose the options
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    except OSError:
        return  # a folder that does not exist yet: the driver will say so clearly
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        _restrict(name, 0o600)


def _restrict(path: Path, mode: int) -> None:
    # Only the owner may change a mode: another user's file is left as it is.
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except (FileNotFoundError, PermissionError):
        pass


def settings_from_env(instance: Path) -> dict[str, Any]:
    env = os.environ
    private_instance(instance)
    grace = int(env.get("QUIZAPP_GRACE_SECONDS", "10"))
    # Sessions and CSRF tokens must outlive the longest attempt plus grace, or a page
    # loaded at minute 0 of an accommodated attempt loses its last saves (DESIGN.md).
    session_hours = int(env.get("QUIZAPP_SESSION_HOURS", "12"))
    return {
        "SECRET_KEY": _secret_key(instance),
        "QUIZAPP_DATABASE_URL": env.get(
            "QUIZAPP_DATABASE_URL", f"sqlite:///{instance / 'quizapp.db'}"
        ),
        # PostgreSQL connections per app process (ignored for SQLite): see db.make_engine.
        "QUIZAPP_DB_POOL_SIZE": int(env.get("QUIZAPP_DB_POOL_SIZE", "4")),
        "QUIZAPP_DB_MAX_OVERFLOW": int(env.get("QUIZAPP_DB_MAX_OVERFLOW", "4")),
        # How many reverse proxies (nginx, a load balancer) stand in front of the app and
        # set X-Forwarded-For / -Proto; 0 means none, and the headers are ignored.
        "QUIZAPP_TRUSTED_PROXIES": int(env.get("QUIZAPP_TRUSTED_PROXIES", "0")),
        "QUIZAPP_TIMEZONE": env.get("QUIZAPP_TIMEZONE", "Europe/London"),
        "QUIZAPP_GRACE": timedelta(seconds=grace),
        "QUIZAPP_BANK_PATH": env.get("QUIZAPP_BANK_PATH", "question_bank"),
        # Single sign-on with OpenID Connect (services/sso.py, docs/sign-in.md): on when an
        # issuer is set. Nobody unknown is let in unless self-enrolment is on, and password
        # sign-in can be turned off only when SSO is on (checked at start-up).
        "QUIZAPP_SSO_ISSUER": env.get("QUIZAPP_SSO_ISSUER", ""),
        "QUIZAPP_SSO_CLIENT_ID": env.get("QUIZAPP_SSO_CLIENT_ID", ""),
        "QUIZAPP_SSO_CLIENT_SECRET": env.get("QUIZAPP_SSO_CLIENT_SECRET", ""),
        "QUIZAPP_SSO_USERNAME_CLAIM": env.get("QUIZAPP_SSO_USERNAME_CLAIM", "preferred_username"),
        "QUIZAPP_SSO_STAFF_CLAIM": env.get("QUIZAPP_SSO_STAFF_CLAIM", ""),
        "QUIZAPP_SSO_STAFF_VALUE": env.get("QUIZAPP_SSO_STAFF_VALUE", ""),
        "QUIZAPP_SSO_SELF_ENROL": env.get("QUIZAPP_SSO_SELF_ENROL", "0").lower()
        in ("1", "true", "yes", "on"),
        "QUIZAPP_SSO_CONTACT": env.get("QUIZAPP_SSO_CONTACT", ""),
        "QUIZAPP_SSO_LABEL": env.get("QUIZAPP_SSO_LABEL", "Sign in with your university account"),
        "QUIZAPP_PASSWORD_LOGIN": env.get("QUIZAPP_PASSWORD_LOGIN", "1").lower()
        not in ("0", "false", "no", "off"),
        # LTI 1.3 launches from a VLE (services/lti.py, docs/lti.md): how a first launch
        # finds the roster's account (email, or username read from the named claim), whom
        # a refused person should ask, the clock leeway, and how often an unknown key id
        # may refetch a platform's keys.
        "QUIZAPP_LTI_MATCH": env.get("QUIZAPP_LTI_MATCH", "email"),
        "QUIZAPP_LTI_USERNAME_CLAIM": env.get("QUIZAPP_LTI_USERNAME_CLAIM", "preferred_username"),
        "QUIZAPP_LTI_CONTACT": env.get("QUIZAPP_LTI_CONTACT", ""),
        "QUIZAPP_LTI_LEEWAY_SECONDS": int(env.get("QUIZAPP_LTI_LEEWAY_SECONDS", "60")),
        "QUIZAPP_LTI_JWKS_REFETCH_SECONDS": float(
            env.get("QUIZAPP_LTI_JWKS_REFETCH_SECONDS", "10")
        ),
        # Launches inside the VLE's page (web/security.py, docs/lti.md "Inside an iframe"):
        # `auto` turns iframe mode on once a platform is registered (the session cookie
        # becomes SameSite=None; Secure, and pages may be framed by the platforms' origins),
        # `1` always, `0` never (links must then open in a new window). Extra origins that
        # may frame quizapp, space- or comma-separated, for VLEs whose pages are not on
        # their issuer's host (Canvas: https://*.instructure.com, or the school's host).
        "QUIZAPP_LTI_IFRAME": env.get("QUIZAPP_LTI_IFRAME", "auto"),
        "QUIZAPP_LTI_FRAME_ANCESTORS": env.get("QUIZAPP_LTI_FRAME_ANCESTORS", ""),
        # Invitation links (services/invitations.py): e-mailed when an SMTP host is set,
        # otherwise given to staff as a CSV for mail merge. The base URL makes the links
        # absolute from the command line (pages use the address they were reached at).
        "QUIZAPP_SMTP_HOST": env.get("QUIZAPP_SMTP_HOST", ""),
        "QUIZAPP_SMTP_PORT": int(env.get("QUIZAPP_SMTP_PORT", "587")),
        "QUIZAPP_SMTP_USER": env.get("QUIZAPP_SMTP_USER", ""),
        "QUIZAPP_SMTP_PASSWORD": env.get("QUIZAPP_SMTP_PASSWORD", ""),
        "QUIZAPP_SMTP_STARTTLS": env.get("QUIZAPP_SMTP_STARTTLS", "1") == "1",
        "QUIZAPP_MAIL_FROM": env.get("QUIZAPP_MAIL_FROM", ""),
        "QUIZAPP_BASE_URL": env.get("QUIZAPP_BASE_URL", ""),
        "QUIZAPP_INVITATION_DAYS": int(env.get("QUIZAPP_INVITATION_DAYS", "7")),
        # How often an open attempt page asks for its status (a deadline moved by staff
        # reaches the countdown within one poll), and how often the staff live table
        # refreshes. Every request costs the server; the browser tests shorten both.
        "QUIZAPP_STATUS_POLL_SECONDS": int(env.get("QUIZAPP_STATUS_POLL_SECONDS", "30")),
        "QUIZAPP_MONITOR_POLL_SECONDS": int(env.get("QUIZAPP_MONITOR_POLL_SECONDS", "15")),
        "QUIZAPP_RATELIMIT_STORAGE_URI": env.get("QUIZAPP_RATELIMIT_STORAGE_URI", ""),
        # The sign-in throttle (quizapp/domain/throttle.py, docs/sign-in.md): failures
        # allowed before delays start, and the longest delay, per account and per address.
        "QUIZAPP_LOGIN_FREE_FAILURES": int(env.get("QUIZAPP_LOGIN_FREE_FAILURES", "5")),
        "QUIZAPP_LOGIN_MAX_DELAY_SECONDS": int(env.get("QUIZAPP_LOGIN_MAX_DELAY_SECONDS", "60")),
        "QUIZAPP_LOGIN_ADDRESS_FREE_FAILURES": int(
            env.get("QUIZAPP_LOGIN_ADDRESS_FREE_FAILURES", "100")
        ),
        "QUIZAPP_LOGIN_ADDRESS_MAX_DELAY_SECONDS": int(
            env.get("QUIZAPP_LOGIN_ADDRESS_MAX_DELAY_SECONDS", "30")
        ),
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=session_hours),
        "WTF_CSRF_TIME_LIMIT": session_hours * 3600,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": env.get("QUIZAPP_SECURE_COOKIES", "0") == "1",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": int(env.get("QUIZAPP_MAX_BODY_BYTES", str(256 * 1024))),
        "MAX_FORM_MEMORY_SIZE": int(env.get("QUIZAPP_MAX_BODY_BYTES", str(256 * 1024))),
    }
