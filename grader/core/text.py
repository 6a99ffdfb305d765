"""Learner text as the kit shows it: on a terminal, in feedback.md, grading.log, the CSV
files, report.html and results.json. Learner code chooses its exception messages and
what it prints, and a submission its name: an escape sequence that reached a terminal
could clear the instructor's screen or rewrite what it shows, a bidirectional override
reorder a line, and a message of megabytes swell every file it lands in.

- ``printable``: one line (a learner's name): every invisible or control character
  becomes \ufffd.
- ``visible``: many lines (a message, a log): line breaks and tabs stay; every other
  control or invisible character is written as its escape (``\\x1b``, ``\\u202e``).
- ``capped``: at most ``limit`` characters, then "…" and how long it was.
- ``without_data``: an exception's message with the data it quotes cut short.
"""
from __future__ import annotations

import itertools
import re
import unicodedata

# Unicode categories that print nothing or move text around: controls, format characters
# (bidirectional overrides among them), line and paragraph separators, surrogates.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
# One check's message, one row's reason: a few KB say all a learner needs.
MESSAGE_CHARS = 4000
# An exception's message may quote the data it was given (MLflow's schema errors quote the
# whole input, 40 rows and more) before its cause: of the data, a few lines are kept.
DATA_LINES = 2
# A line longer than LINE_CHARS (a list of thousands of values) keeps its start and its end.
LINE_CHARS, LINE_HEAD, LINE_TAIL = 1000, 200, 400


def printable(text: str) -> str:
    """``text`` with every invisible or control character shown as \ufffd: a learner's name
    printed to a terminal or put in a Markdown line must not move the cursor or end the line."""
    return "".join("\ufffd" if unicodedata.category(c) in HIDDEN_CATEGORIES else c for c in text)


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with its line breaks and tabs, and every other control or invisible
    character (C0, C1, DEL, format characters, separators) written as its escape."""
    text = text.replace("\r\n", "\n")
    return "".join(c if c in "\n\t" or unicodedata.category(c) not in HIDDEN_CATEGORIES else _escape(c) for c in text)


def capped(text: str, limit: int = MESSAGE_CHARS) -> str:
    """At most ``limit`` characters and a note of how many there were (cut once already,
    by the sandbox, the text says how many it had at first)."""
    if len(text) <= limit:
        return text
    earlier = _CUT.search(text)
    return f"{text[:limit]} … (cut: {earlier[1] if earlier else f'{len(text):,}'} characters in all)"


_CUT = re.compile(r"\(cut: ([\d,]+) characters in all\)")


def shown(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Learner text ready for any output: visible, then capped."""
    return capped(visible(text), limit)


# A value in a printed table or array: a number, or one of the words NumPy and pandas print.
_VALUE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|\b(?:nan|inf|None|True|False|NaT)\b", re.IGNORECASE)
_NOT_VALUE = re.compile(r"[^\s\[\](){},;:'\".…]")  # anything but values, brackets and separators


def _is_data(line: str) -> bool:
    """A line of a printed DataFrame or array: values between brackets and spaces, no words."""
    return bool(_VALUE.search(line)) and not _NOT_VALUE.search(_VALUE.sub("", line))


def _short_line(line: str) -> str:
    if len(line) <= LINE_CHARS:
        return line
    return f"{line[:LINE_HEAD]} … ({len(line) - LINE_HEAD - LINE_TAIL:,} characters left out) … {line[-LINE_TAIL:]}"


def without_data(text: str) -> str:
    """An exception's message with the data it quotes cut short, its words kept: of a run of
    data lines, the first ``DATA_LINES`` and how many more there were; of a very long line,
    its start and its end (where MLflow says the cause)."""
    kept = []
    for is_data, group in itertools.groupby(text.split("\n"), _is_data):
        lines = list(group)
        if is_data and len(lines) > DATA_LINES + 1:
            lines = [*lines[:DATA_LINES], f"… ({len(lines) - DATA_LINES} more lines of data)"]
        kept += map(_short_line, lines)
    return "\n".join(kept)


def quoted(text: str, limit: int = 400) -> str:
    """What learner code raised, quoted in a check's message: its data cut short, then
    capped (the whole message is made visible where it is shown)."""
    return capped(without_data(text).strip(), limit)
