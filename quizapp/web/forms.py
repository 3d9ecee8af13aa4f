"""WTForms: shapes of input only; rules live in the services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


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
