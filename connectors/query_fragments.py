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
    text: str,
    *,
    quotes: str,
    language: str,
    clause_words: re.Pattern[str] | None = None,
    ending_words: re.Pattern[str] | None = None,
) -> str | None:
    """What is wrong with `text` as a condition kept whole in parentheses, or None.

    `quotes` are the characters that open and close a string, in which a backslash
    escapes the next character; a backslash outside strings is refused. Outside strings: `clause_words`
    match words that start a clause of their own (SOQL's `LIMIT`), refused outside
    parentheses; `ending_words` match what the client cuts off the end (JQL's
    `ORDER BY`), refused inside parentheses, where cutting would leave one open.
    """
    control = _CONTROL.search(text)
    if control:
        return f"control character U+{ord(control.group()):04X} at character {control.start() + 1}"
    quote: str | None = None
    quote_at = 0
    opened: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char == "\\":
            # Outside a string it would escape the client's closing parenthesis.
            return f"'\\' at character {index + 1} is outside a quoted string"
        elif char in quotes:
            quote, quote_at = char, index
        elif char == "(":
            opened.append(index)
        elif char == ")":
            if not opened:
                return (
                    f"')' at character {index + 1} closes a parenthesis it did not open: "
                    f"the {language} condition is kept whole in parentheses"
                )
            opened.pop()
        elif text.startswith(_COMMENT, index):
            return (
                f"{text[index : index + 2]!r} at character {index + 1}: {language} has no comments"
            )
        elif char == ";":
            return f"';' at character {index + 1}: the {language} condition must be one statement"
        elif index == 0 or not _word_char(text[index - 1]):
            word = _word_at(clause_words if not opened else ending_words, text, index)
            if word and not opened:
                return (
                    f"{word!r} at character {index + 1} starts a clause of its own; "
                    f"give only the condition"
                )
            if word:
                return f"{word!r} at character {index + 1} is inside parentheses; put it at the end"
        index += 1
    if quote:
        return f"the quote {quote} at character {quote_at + 1} is never closed"
    if opened:
        return f"the '(' at character {opened[-1] + 1} is never closed"
    return None


def _word_at(words: re.Pattern[str] | None, text: str, index: int) -> str | None:
    match = words.match(text, index) if words is not None else None
    return " ".join(match.group().upper().split()) if match else None


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"
