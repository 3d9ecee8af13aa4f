"""Small banks for the bank upload tests (functional and browser): one with an error at a
known file and line, and the same bank fixed, as folders' files or as zip bytes."""

from __future__ import annotations

import base64
import io
import zipfile

# A 1×1 PNG: the upload carries images next to the YAML.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

QUESTIONS = """questions:
  - id: upload-sum
    type: numeric
    title: Upload sum
    tags: [upload]
    stem: |
      ![One pixel](images/pixel.png)

      What is $2 + 3$?
    answer: 5
    tolerance: 0
  - id: upload-choice
    type: single_choice
    title: Upload choice
    tags: [upload]
    stem: Which is a prime?
    options:
      - text: "7"
        correct: true
      - text: "8"
      - text: "9"
"""

# Line 11 of questions/upload.yaml: a misspelt field (the loader names file and line).
BROKEN_QUESTIONS = QUESTIONS.replace("    tolerance: 0\n", "    tolerence: 0\n")
BROKEN_LINE = "upload-bank/questions/upload.yaml:11"


def bank_files(broken: bool = False) -> dict[str, bytes]:
    """The bank as (path inside the folder → bytes), under a top folder `upload-bank`."""
    text = BROKEN_QUESTIONS if broken else QUESTIONS
    return {
        "upload-bank/questions/upload.yaml": text.encode(),
        "upload-bank/questions/images/pixel.png": PIXEL,
        "upload-bank/README.md": b"Notes for authors: not part of the bank.\n",
    }


def bank_zip(broken: bool = False) -> bytes:
    return zip_of(bank_files(broken))


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
