"""Outgoing e-mail over SMTP (Python's smtplib), for invitation links.

Configured by QUIZAPP_SMTP_* settings (config.py); without a host there is no mail and
callers fall back to a CSV for mail merge. A batch uses one connection (a roster of
2,000 is 2,000 messages, not 2,000 TLS handshakes), and a refused address is reported
and does not stop the others; a connection that drops mid-batch is opened again once.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str
    starttls: bool
    mail_from: str


def smtp_settings(config: Mapping[str, Any]) -> SmtpSettings | None:
    """The SMTP settings of an app's config, or None when mail is not configured."""
    host = str(config.get("QUIZAPP_SMTP_HOST") or "").strip()
    if not host:
        return None
    return SmtpSettings(
        host=host,
        port=int(config.get("QUIZAPP_SMTP_PORT") or 587),
        user=str(config.get("QUIZAPP_SMTP_USER") or ""),
        password=str(config.get("QUIZAPP_SMTP_PASSWORD") or ""),
        starttls=bool(config.get("QUIZAPP_SMTP_STARTTLS", True)),
        mail_from=str(config.get("QUIZAPP_MAIL_FROM") or f"quizapp@{host}"),
    )


@dataclass(frozen=True)
class Outgoing:
    """One message to send; `key` lets the caller match the result to its own record."""

    key: int
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class Delivery:
    key: int
    to: str
    error: str | None  # None: the server accepted the message

    @property
    def sent(self) -> bool:
        return self.error is None


def build_message(settings: SmtpSettings, outgoing: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = outgoing.to
    message["Subject"] = outgoing.subject
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message.set_content(outgoing.body)
    return message


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.port == 465:
        # Port 465 speaks TLS from the first byte (RFC 8314); STARTTLS does not apply.
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
        if settings.starttls:
            smtp.starttls(context=context)
    if settings.user:
        smtp.login(settings.user, settings.password)
    return smtp


def send_all(settings: SmtpSettings, messages: Iterable[Outgoing]) -> list[Delivery]:
    """Send every message over one connection; one Delivery per message, in order.

    A recipient the server refuses, or a message it rejects, is reported with the
    server's reply and the batch goes on. If the server cannot be reached at all, every
    message is reported as not sent with the reason."""
    results: list[Delivery] = []
    pending = list(messages)
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        reason = f"could not connect to {settings.host}:{settings.port}: {exc}"
        return [Delivery(m.key, m.to, reason) for m in pending]
    try:
        for outgoing in pending:
            if not outgoing.to.strip():
                results.append(Delivery(outgoing.key, outgoing.to, "no e-mail address"))
                continue
            message = build_message(settings, outgoing)
            try:
                smtp.send_message(message)
            except smtplib.SMTPServerDisconnected:
                # Servers close long sessions (a message limit, an idle timeout): one
                # new connection, one retry of this message.
                try:
                    smtp = _connect(settings)
                    smtp.send_message(message)
                except (OSError, smtplib.SMTPException) as exc:
                    results.append(Delivery(outgoing.key, outgoing.to, _reason(exc)))
                    continue
            except (OSError, smtplib.SMTPException) as exc:
                results.append(Delivery(outgoing.key, outgoing.to, _reason(exc)))
                continue
            results.append(Delivery(outgoing.key, outgoing.to, None))
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
    return results


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = [
            f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values()
        ]
        return "refused: " + "; ".join(replies)
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error  # bytes from smtplib; typed bytes | str
        text = error.decode(errors="replace") if isinstance(error, bytes) else error
        return f"{exc.smtp_code} {text}"
    return str(exc) or type(exc).__name__
