"""Checks on the query fragments a definitions file hands to an API (Jira's `jql`, Salesforce's `where`).

The connectors wrap a fragment in parentheses and append the date window,
`(<fragment>) AND <window>`. A fragment that closes a parenthesis it did not open
(`x) OR (1=1`), leaves a quote or parenthesis open, or hides text behind a comment
would take part of the query outside the window, so the metric models refuse it when
the definitions are loaded (`okr lint`), naming the key. Pure text checks, no HTTP.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_COMMENT = ("--", "/*", "*/")


def fragment_problem(
    text: str, *, quotes: str, language: str, clause_words: re.Pattern[str] | None = None
) -> str | None:
    """What is wrong with `text` as a condition kept whole in parentheses, or None.

    `quotes` are the characters that open and close a string (a backslash escapes the
    next character); `clause_words` matches words that start a clause of their own
    (`LIMIT`, `ORDER BY`), refused outside parentheses and strings.
    """
    control = _CONTROL.search(text)
    if control:
        return f"control character U+{ord(control.group()):04X} at character {control.start() + 1}"
    depth = 0
    quote: str | None = None
    quote_at = 0
    opened: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if quote:
            if char == quote:
                quote = None
        elif char in quotes:
            quote, quote_at = char, index
        elif char == "(":
            depth += 1
            opened.append(index)
        elif char == ")":
            if depth == 0:
                return (
                    f"')' at character {index + 1} closes a parenthesis it did not open: "
                    f"the {language} condition is kept whole in parentheses"
                )
            depth -= 1
            opened.pop()
        elif text.startswith(_COMMENT, index):
            return (
                f"{text[index : index + 2]!r} at character {index + 1}: {language} has no comments"
            )
        elif char == ";":
            return f"';' at character {index + 1}: the {language} condition must be one statement"
        elif depth == 0 and clause_words is not None:
            word = clause_words.match(text, index)
            if word and (index == 0 or not _word_char(text[index - 1])):
                return (
                    f"{word.group().upper()!r} at character {index + 1} starts a clause of its own; "
                    f"give only the condition"
                )
        index += 1
    if quote:
        return f"the quote {quote} at character {quote_at + 1} is never closed"
    if opened:
        return f"the '(' at character {opened[-1] + 1} is never closed"
    return None


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"
