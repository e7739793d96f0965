"""Caption checks shared by the pipelines and the CLI (no heavy imports: the CLI runs them before any model
loads). A caption the text encoder would read as nothing, or as something else than typed, is an error, never
a silent unconditional generation."""

from __future__ import annotations

import unicodedata

MAX_CAPTION_CHARS = 1000  # the default text encoder reads 32 tokens; far longer text is a mistake, not a caption
_WHITESPACE = {"\t", "\n", "\r"}


def check_caption(caption, what: str = "the caption") -> str:
    """Return ``caption`` unchanged when it is usable; raise ValueError naming the problem otherwise."""
    if not isinstance(caption, str):
        raise ValueError(f"{what} must be a string, got {type(caption).__name__}")
    if any("\udc80" <= ch <= "\udcff" for ch in caption):  # how Python keeps undecodable command-line bytes
        raise ValueError(f"{what} is not valid UTF-8 text")
    if not caption.strip():
        raise ValueError(f"{what} is empty; give a text prompt such as 'a red circle moving left'")
    bad = sorted({f"U+{ord(ch):04X}" for ch in caption
                  if ch not in _WHITESPACE and unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")})
    if bad:
        raise ValueError(f"{what} contains control or unassigned characters ({', '.join(bad[:3])}); "
                         "give plain text")
    if len(caption) > MAX_CAPTION_CHARS:
        raise ValueError(f"{what} is {len(caption)} characters long; at most {MAX_CAPTION_CHARS} are allowed "
                         "(the text encoder reads the first 32 tokens)")
    return caption
