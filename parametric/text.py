"""Which characters a text input may hold, and why the others are refused, in plain words.

One rule for every text a customer or a staff member types: the template's text fields
(:func:`parametric.schema.text`) and, at the web edge, names, e-mail addresses, tokens and filters.
Control characters (NUL among them: PostgreSQL cannot even store it) are refused everywhere, except a
tab or a line break in a field that holds several lines. Text that is made into a product or shown to
the workshop also refuses the invisible formatting characters: bidirectional overrides and isolates,
which reorder what a reader sees, and zero-width characters, which hide in the text.
"""

from __future__ import annotations

import unicodedata

MULTILINE_WHITESPACE = frozenset("\t\n\r")
"""Control characters a multi-line field keeps: tab and line breaks."""

BIDIRECTIONAL = frozenset(chr(code) for code in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                                 *range(0x2066, 0x206A)))
"""Bidirectional marks, embeddings, overrides and isolates (U+202E RIGHT-TO-LEFT OVERRIDE and the like)."""


def describe_character(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character named the way Unicode names it."""
    name = unicodedata.name(ch, "")
    if not name and unicodedata.category(ch) == "Cc":
        name = {0: "NULL", 0x7F: "DELETE"}.get(ord(ch), "control character")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def refused_character(value: str, *, multiline: bool = False, invisible: bool = True) -> str | None:
    """Why ``value`` cannot be taken, naming its first refused character, or ``None`` when every character is fine.

    ``multiline`` keeps tabs and line breaks; ``invisible`` also refuses bidirectional controls and
    zero-width (format) characters, for text that is made or shown to staff.
    """
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc":
            if multiline and ch in MULTILINE_WHITESPACE:
                continue
            allowed = "letters, digits, spaces, punctuation and line breaks" if multiline else \
                "letters, digits, spaces and punctuation on one line"
            return (f"contains the control character {describe_character(ch)}, which cannot be shown or stored; "
                    f"allowed: {allowed}")
        if category == "Cs":
            return (f"contains {describe_character(ch)}, half of a character (a lone surrogate), which is not "
                    f"text; send the text as valid UTF-8")
        if invisible and ch in BIDIRECTIONAL:
            return (f"contains the bidirectional control {describe_character(ch)}, which changes the order in which "
                    f"the text is displayed, so what is read could differ from what is made; remove it")
        if invisible and category == "Cf":
            return (f"contains the invisible character {describe_character(ch)}, which takes no space and cannot be "
                    f"seen, so two texts that look the same could differ; remove it")
    return None
