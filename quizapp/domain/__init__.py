"""The pure core of quizapp: question types, grading, timing and scoring.

Nothing in this package imports Flask, SQLAlchemy or WTForms, and no rule reads
the clock: the current time is always a parameter. A unit test enforces this.
"""
