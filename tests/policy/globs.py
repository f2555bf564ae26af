"""IAM-style wildcard strings: ``*`` matches any run of characters, ``?`` one character.

:func:`globs_intersect` decides whether two patterns can match a common string: whether a granted ARN
(``arn:aws:bedrock:*::foundation-model/anthropic.*``) can name a resource of a type whose ARN format is another
pattern. An ARN format (:func:`arn_format_tokens`) also has :data:`SEGMENT` wildcards (``${Partition}``,
``${Region}``, ``${Account}`` in the SAR), which match a run of characters without ``:`` or ``/``: so a grant on
``...:evaluation-job/*`` can never name a ``custom-model`` (``arn:${Partition}:bedrock:${Region}:${Account}:
custom-model/${ResourceId}``).
"""

from __future__ import annotations

import re
from functools import cache

STAR = "\x00*"
ANY = "\x00?"
SEGMENT = "\x00#"
_SEPARATORS = frozenset(":/")
_SEGMENT_VARIABLES = frozenset({"Partition", "Region", "Account"})


def glob_tokens(pattern: str) -> tuple[str, ...]:
    """An IAM pattern as tokens: :data:`STAR`, :data:`ANY` or one literal character."""
    out: list[str] = []
    for char in pattern:
        if char == "*":
            if not out or out[-1] != STAR:
                out.append(STAR)
        elif char == "?":
            out.append(ANY)
        else:
            out.append(char)
    return tuple(out)


def arn_format_tokens(arn_format: str) -> tuple[str, ...]:
    """A SAR ARN format (``arn:${Partition}:s3:::${BucketName}/${ObjectName}``) as tokens."""
    out: list[str] = []
    for part in re.split(r"(\$\{[^}]+\})", arn_format):
        if part.startswith("${") and part.endswith("}"):
            out.append(SEGMENT if part[2:-1] in _SEGMENT_VARIABLES else STAR)
        else:
            out.extend(part)
    return tuple(out)


@cache
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if t == STAR else "." if t == ANY else re.escape(t) for t in glob_tokens(pattern)]
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        return bool(glob_to_regex(pattern.lower()).match(value.lower()))
    return bool(glob_to_regex(pattern).match(value))


def _wild(token: str) -> bool:
    return token in (STAR, SEGMENT)


def globs_intersect(left: tuple[str, ...] | str, right: tuple[str, ...] | str) -> bool:
    """True when some string matches both token sequences (plain strings are IAM patterns)."""
    a = glob_tokens(left) if isinstance(left, str) else left
    b = glob_tokens(right) if isinstance(right, str) else right
    return _search(a, b)


def _search(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Breadth-first search over (i, j) positions of the two token sequences."""
    seen: set[tuple[int, int]] = set()
    frontier = [(0, 0)]
    while frontier:
        i, j = frontier.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        x = a[i] if i < len(a) else None
        y = b[j] if j < len(b) else None
        if x is not None and _wild(x):
            frontier.append((i + 1, j))  # x matches nothing more
        if y is not None and _wild(y):
            frontier.append((i, j + 1))  # y matches nothing more
        if x is None or y is None:
            continue
        if _wild(x) and not _wild(y):
            # x takes the character y stands for (a SEGMENT never takes a separator).
            if not (x == SEGMENT and y in _SEPARATORS):
                frontier.append((i, j + 1))
        elif _wild(y) and not _wild(x):
            if not (y == SEGMENT and x in _SEPARATORS):
                frontier.append((i + 1, j))
        elif not _wild(x) and not _wild(y) and (ANY in (x, y) or x == y):
            frontier.append((i + 1, j + 1))
        # Two wildcards facing each other: one of them ends first (the two moves above).
    return False
