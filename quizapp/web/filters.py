"""Template filters: times in the course's zone, marks for people."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from flask import Flask
from markupsafe import Markup

from quizapp.domain.render import labelled_maths
from quizapp.domain.scoring import format_mark


def init_app(app: Flask) -> None:
    from quizapp.web import course_zone, question_html

    question_html.init_app(app)  # question_section, the attempt page's questions

    @app.template_filter("local")
    def local(moment: datetime | None, fmt: str = "%a %d %b %Y, %H:%M %Z") -> str:
        if moment is None:
            return "—"
        return moment.astimezone(course_zone()).strftime(fmt)

    @app.template_filter("localtime")
    def localtime(moment: datetime | None) -> str:
        return local(moment, "%H:%M:%S %Z")

    @app.template_filter("iso")
    def iso(moment: datetime | None) -> str:
        return moment.isoformat() if moment else ""

    @app.template_filter("mark")
    def mark(value: Fraction | None) -> str:
        return format_mark(value)

    @app.template_filter("labelled_maths")
    def labelled_maths_filter(fragment: str) -> Markup:
        """Sanitised HTML (rendered by domain.render) for a label: formulas keep their
        MathML for the eye and get a text reading for screen readers."""
        return Markup(labelled_maths(str(fragment)))

    @app.template_filter("sanitised")
    def sanitised(fragment: str) -> Markup:
        """HTML that quizapp.domain produced through its sanitiser (domain.render), such
        as describe_response_html: safe to insert as it is. Never for anything else."""
        return Markup(str(fragment))

    @app.template_filter("minutes")
    def minutes(seconds: float | None) -> str:
        if seconds is None:
            return "no time limit"
        total = int(seconds // 60)
        hours, mins = divmod(total, 60)
        parts = []
        if hours:
            parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
        if mins or not hours:
            parts.append(f"{mins} minute{'s' if mins != 1 else ''}")
        return " ".join(parts)
