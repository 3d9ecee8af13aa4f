"""WTForms: shapes of input only; rules live in the services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    SubmitField,
)

# SelectChoice is WTForms 3.3's way to declare an option (tuples now warn); types-WTForms
# still describes 3.2. Once the stubs know it, mypy reports these ignores as unused.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange

from quizapp.services.invitations import DEFAULT_DAYS, MAX_DAYS


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Log in")


class ConfirmForm(FlaskForm):
    """A bare POST with CSRF: start, submit, log out."""

    submit = SubmitField("Confirm")


class AnswersForm(FlaskForm):
    """The attempt page. Answer fields are dynamic (slot-N) and read by the view."""

    seq = HiddenField()


# --- invitations and passwords (web/invitations.py) --------------------------------------

# Shape only; the password rule itself is quizapp/domain/passwords.py, applied by the
# service so that the page, the command line and staff all meet the same rule.


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", "The two passwords differ.")],
    )
    submit = SubmitField("Set my password")


class _LinkOptions(FlaskForm):
    days = IntegerField(
        "Link works for (days)",
        default=DEFAULT_DAYS,
        validators=[DataRequired(), NumberRange(min=1, max=MAX_DAYS)],
    )
    send = SubmitField("Send by e-mail")
    download = SubmitField("Download the CSV")


class InviteManyForm(_LinkOptions):
    scope = RadioField(
        "Who",
        choices=[
            SelectChoice("never-signed-in", "Everyone who has never signed in"),
            SelectChoice("no-password", "Everyone who has no password yet"),
            SelectChoice("all", "Everyone on the roster (older links stop working)"),
        ],
        default="never-signed-in",
        validators=[DataRequired()],
    )


class InviteOneForm(_LinkOptions):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    send = SubmitField("Send by e-mail")
    download = SubmitField("Show the link")


class ResetPasswordForm(FlaskForm):
    username = HiddenField(validators=[DataRequired(), Length(max=150)])
    days = IntegerField(
        "Link works for (days)",
        default=DEFAULT_DAYS,
        validators=[DataRequired(), NumberRange(min=1, max=MAX_DAYS)],
    )
    send = SubmitField("Reset and e-mail a link")
    download = SubmitField("Reset and show the link")
