"""Moodle's HTML → this project's Markdown, for the tags Markdown can say.

The renderer does not pass raw HTML through (a stem's `<b>` would show as text), so HTML
is never kept: the tags below become Markdown, and any other tag is dropped with its text
kept and its name returned, so the converter can say what formatting was lost. Images
from `@@PLUGINFILE@@/name` become `![alt](images/name)`; other addresses are not allowed in
a bank (exam day must not depend on another site), so such an image becomes its alt text
and is reported. Moodle's maths delimiters `\\( \\)` and `\\[ \\]` become `$ $` and `$$ $$`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import unquote

PLUGINFILE = "@@PLUGINFILE@@/"
_INLINE_MARKS = {"b": "**", "strong": "**", "i": "*", "em": "*"}
_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "blockquote"}
# Tags whose loss changes nothing a student needs.
_QUIET = {"span", "font", "u", "small", "big", "center", "html", "body", "tbody", "thead"}
_SKIP_CONTENT = {"script", "style", "head", "title"}
_SPECIAL = re.compile(r"([\\`*\[\]$<])")
_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+[.)])(\s)", re.MULTILINE)
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MATH = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]|\$\$(.+?)\$\$", re.DOTALL)


def escape_text(text: str) -> str:
    """Plain text as Markdown that shows exactly that text."""
    text = _SPECIAL.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    return _LINE_START.sub(r"\1\\\2\3", text)


def text_with_maths(text: str) -> str:
    """Escape plain text, keeping Moodle's maths (\\( \\), \\[ \\], $$ $$) as $ and $$."""
    out: list[str] = []
    last = 0
    for match in _MATH.finditer(text):
        out.append(escape_text(text[last : match.start()]))
        inline, display, dollars = match.groups()
        if inline is not None:
            out.append(f"${inline.strip()}$")
        else:
            out.append(f"$${(display if display is not None else dollars).strip()}$$")
        last = match.end()
    out.append(escape_text(text[last:]))
    return "".join(out)


class _Converter(HTMLParser):
    def __init__(self, image: Callable[[str], str | None]) -> None:
        super().__init__(convert_charrefs=True)
        self.image = image
        self.blocks: list[tuple[str, bool]] = []  # finished paragraphs (text, list item?)
        self.current: list[str] = []  # pieces of the paragraph being built
        self.lists: list[list[int]] = []  # [counter] per open list (0 = bulleted)
        self.lost: set[str] = set()
        self.href: list[str | None] = []
        self.skip = 0
        self.pre = 0
        self.language = ""
        self.prefix = ""

    def _flush(self) -> None:
        text = "".join(self.current).strip("\n")
        text = "\n".join(line.rstrip() for line in text.split("\n"))
        if text.strip():
            item = self.prefix.lstrip().startswith("-") or self.prefix.lstrip()[:1].isdigit()
            self.blocks.append((self.prefix + text, item))
        self.current = []
        self.prefix = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in _SKIP_CONTENT:
            self.skip += 1
        elif tag in _INLINE_MARKS:
            self.current.append(_INLINE_MARKS[tag])
        elif tag in ("code", "tt", "kbd") and not self.pre:
            self.current.append("`")
        elif tag == "code":
            # <pre><code class="language-python">: the fence keeps the language.
            classes = values.get("class", "").split()
            self.language = next((c[9:] for c in classes if c.startswith("language-")), "")
        elif tag == "br":
            self.current.append("\n" if self.pre else "\\\n")
        elif tag in ("ul", "ol"):
            self._flush()
            self.lists.append([1 if tag == "ol" else 0])
        elif tag == "li":
            self._flush()
            counter = self.lists[-1] if self.lists else [0]
            indent = "   " * max(len(self.lists) - 1, 0)
            self.prefix = indent + (f"{counter[0]}. " if counter[0] else "- ")
            if counter[0]:
                counter[0] += 1
        elif tag == "pre":
            self._flush()
            self.pre += 1
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._flush()
            self.prefix = "#" * int(tag[1]) + " "
        elif tag in _BLOCKS or tag in ("tr", "table"):
            self._flush()
            if tag in ("table", "blockquote"):
                self.lost.add(tag)
        elif tag == "a":
            href = values.get("href", "")
            self.href.append(href if href.startswith(("http://", "https://")) else None)
            if self.href[-1]:
                self.current.append("[")
        elif tag == "img":
            self._image(values)
        elif tag in ("td", "th"):
            self.current.append(" | " if self.current else "")
        elif tag not in _QUIET:
            self.lost.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_CONTENT:
            self.skip = max(self.skip - 1, 0)
        elif tag in _INLINE_MARKS:
            self.current.append(_INLINE_MARKS[tag])
        elif tag in ("code", "tt", "kbd") and not self.pre:
            self.current.append("`")
        elif tag == "pre":
            code = "".join(self.current).strip("\n")
            self.current = []
            self.pre = max(self.pre - 1, 0)
            self.blocks.append((f"```{self.language}\n{code}\n```", False))
            self.language = ""
        elif tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag == "a":
            href = self.href.pop() if self.href else None
            if href:
                self.current.append(f"]({href})")
        elif tag in _BLOCKS or tag in ("li", "tr", "table"):
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.current.append(data)
            return
        self.current.append(text_with_maths(re.sub(r"\s+", " ", data)))

    def _image(self, attrs: dict[str, str]) -> None:
        src, alt = attrs.get("src", ""), attrs.get("alt", "").strip()
        target = None
        if src.startswith(PLUGINFILE):
            target = self.image(unquote(src[len(PLUGINFILE) :]))
        if target is None:
            self.lost.add("img (not in the export)")
            self.current.append(escape_text(alt) if alt else "")
            return
        alt = alt or "image"
        self.current.append(f"![{escape_text(alt)}]({target})")

    def result(self) -> str:
        self._flush()
        pieces: list[str] = []
        for i, (text, item) in enumerate(self.blocks):
            if i:
                pieces.append("\n" if item and self.blocks[i - 1][1] else "\n\n")
            pieces.append(text)
        # Emphasis around nothing (<b></b>, <b> </b>) is noise.
        text = re.sub(r"(?<!\S)\*\*\s*\*\*(?!\S)", "", "".join(pieces))
        # Two line breaks in a row (<br><br>) are a new paragraph.
        return re.sub(r"\\\n(\\\n)+", "\n\n", text).strip()


def html_to_markdown(
    html: str, image: Callable[[str], str | None] = lambda name: None
) -> tuple[str, set[str]]:
    """(Markdown, names of tags whose formatting was lost). `image(name)` gives the path
    an exported file is written to, or None when the export does not carry it."""
    converter = _Converter(image)
    converter.feed(html)
    converter.close()
    return converter.result(), converter.lost
