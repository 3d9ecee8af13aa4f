"""Images next to the YAML files of a bank: finding, checking and addressing them.

An author writes ``![A 3×3 kernel over a 5×5 input](images/conv.png)`` in any Markdown
field; the path is relative to the folder of the YAML file that contains it, and must
stay inside the bank. The web layer serves a file under a URL that carries a prefix of
its SHA-256 (``/assets/<digest>/<path>``), so a browser may cache it for ever and a
changed image gets a new address. Only raster formats are allowed: an SVG opened
directly from our origin could run script.

Pure functions (no Flask): the validator reports missing or refused images with file
and line, and the web layer and ``bank preview`` rewrite ``<img src>`` with them.
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

ASSET_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
MAX_ASSET_BYTES = 2_000_000
DIGEST_LENGTH = 16  # hex characters of the SHA-256 kept in the URL

_MD = MarkdownIt("commonmark").enable("table")
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


class AssetError(ValueError):
    """An image reference that cannot be served; the message is for the author."""


def image_sources(markdown: str) -> list[str]:
    """Every image address in a Markdown text, in order."""
    return [src for src in _walk_images(_MD.parse(markdown))]


def _walk_images(tokens: list[Token]) -> Iterator[str]:
    for token in tokens:
        if token.type == "image":
            src = token.attrGet("src")
            if isinstance(src, str):
                yield src
        if token.children:
            yield from _walk_images(token.children)


def resolve_asset(base: Path, source_file: str, src: str) -> Path:
    """The file `src` names, written in `source_file` (relative to the bank folder `base`).

    Raises AssetError when it is external, escapes the bank, is not an allowed image type,
    is missing or too large.
    """
    if _EXTERNAL.match(src):
        raise AssetError(
            f"image {src!r} is not in the bank: put the file next to the YAML and use a "
            "relative path (exam day must not depend on another site)"
        )
    relative = PurePosixPath(src.split("#", 1)[0].split("?", 1)[0])
    if relative.is_absolute() or not relative.parts:
        raise AssetError(f"image {src!r}: use a path relative to the YAML file")
    suffix = relative.suffix.lower()
    if suffix not in ASSET_TYPES:
        allowed = ", ".join(sorted(ASSET_TYPES))
        raise AssetError(f"image {src!r}: use one of {allowed} (SVG can carry script)")
    root = base.resolve()
    folder = (root / source_file).parent
    target = (folder / relative).resolve()
    if not target.is_relative_to(root):
        raise AssetError(f"image {src!r} is outside the bank folder")
    if not target.is_file():
        raise AssetError(f"image {src!r} not found (looked for {target.relative_to(root)})")
    if target.stat().st_size > MAX_ASSET_BYTES:
        raise AssetError(f"image {src!r} is larger than 2 MB")
    return target


def asset_digest(path: Path) -> str:
    """The URL digest of a file: the first DIGEST_LENGTH hex characters of its SHA-256."""
    return file_sha256(path)[:DIGEST_LENGTH]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    stat = path.stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size in the key: an edited file is hashed again.
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_served_asset(base: Path, digest: str, path: str) -> Path | None:
    """The bank file `path` (relative to `base`) if it is a servable image with `digest`.

    None for anything else (traversal, other types, a stale digest): the caller answers 404.
    """
    relative = PurePosixPath(path)
    if (
        relative.is_absolute()
        or ".." in relative.parts
        or relative.suffix.lower() not in ASSET_TYPES
    ):
        return None
    root = base.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    if target.stat().st_size > MAX_ASSET_BYTES or asset_digest(target) != digest:
        return None
    return target


def asset_path(base: Path, target: Path) -> str:
    """`target` relative to the bank folder, with forward slashes (the URL's path part)."""
    return target.relative_to(base.resolve()).as_posix()


def rewrite_images(fragment: str, address: Callable[[str], str | None]) -> str:
    """Replace each `<img src>` in sanitised HTML by `address(src)` (unchanged if None)."""

    def replace(match: re.Match[str]) -> str:
        src = html.unescape(match.group(2))
        new = address(src)
        if new is None:
            return match.group(0)
        return match.group(1) + html.escape(new, quote=True) + match.group(3)

    return _IMG_SRC.sub(replace, fragment) if "<img" in fragment else fragment


# Frozen images. An import writes the SHA-256 of each image file into the address the
# question's Markdown gives it (``images/conv.png#sha256=<64 hex>``) and keeps the bytes
# in the database: the digest is then part of the version's spec and content hash, so an
# edited image makes a new question version, and the attempts started with the old one
# keep showing the old image. Addresses the loader cannot match in the text are left as
# written and served from the bank folder as before.
FROZEN = "#sha256="
_FROZEN_SRC = re.compile(r"#sha256=([0-9a-f]{64})$")


def freeze_images(spec: Any, base: Path, source_file: str) -> tuple[Any, dict[str, Path]]:
    """A copy of a question spec whose image addresses carry the SHA-256 of the file they
    name, and those files by digest. Images that cannot be resolved are left alone (the
    validator reports them)."""
    files: dict[str, Path] = {}

    def freeze_text(text: str) -> str:
        if "![" not in text:
            return text
        for src in dict.fromkeys(image_sources(text)):
            if "#" in src:
                continue  # frozen already, or a fragment the author chose
            try:
                target = resolve_asset(base, source_file, src)
            except AssetError:
                continue
            digest = file_sha256(target)
            # The address as written after `](` (inline) or `[ref]:` (a reference).
            pattern = re.compile(
                r"(\]\(\s*<?|^\s*\[[^\]]+\]:\s*<?)" + re.escape(src) + r"(?=[\s)>]|$)", re.M
            )
            frozen = (src + FROZEN + digest).replace("\\", "\\\\")
            text, count = pattern.subn(r"\g<1>" + frozen, text)
            if count:
                files[digest] = target
        return text

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return freeze_text(node)
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(spec), files


def frozen_digests(spec_json: str) -> set[str]:
    """The digests of the frozen images a spec (as JSON text) refers to."""
    return set(re.findall(r"#sha256=([0-9a-f]{64})", spec_json))


def frozen_address(source_file: str, src: str) -> tuple[str, str] | None:
    """(digest, path inside the bank) of a frozen image address written in `source_file`;
    None for an address that is not frozen or leaves the bank."""
    match = _FROZEN_SRC.search(src)
    if match is None or _EXTERNAL.match(src):
        return None
    relative = src[: match.start()].split("?", 1)[0]
    if not relative or relative.startswith("/"):
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(source_file), relative))
    if path.startswith("..") or PurePosixPath(path).suffix.lower() not in ASSET_TYPES:
        return None
    return match.group(1), path
