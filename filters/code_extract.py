"""Find the program in a completion: fenced or bare, whole function or body only.

Linear in the completion: fences are found with `str.find`, and every pattern is anchored
so that no position is scanned more than a constant number of times (a completion of
150k newlines once took 32 s here). A completion over `MAX_CODE_CHARS` is not searched.
"""

from __future__ import annotations

import re

from distillery.filters.base import MAX_TEXT_CHARS

# Longest completion searched for code; a longer one holds none (checked before any work).
MAX_CODE_CHARS = MAX_TEXT_CHARS
_FENCE_LANG = re.compile(r"[ \t]*+([A-Za-z0-9_+-]*+)")
# A line that starts code. Possessive quantifiers: a failed attempt never backtracks.
_CODE_START = re.compile(
    r"^(?:from\s++\S++\s++import|import\s++\S|def\s++\w|class\s++\w|@\w)", re.M
)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each ``` block, in order; an unclosed last block runs to the end.

    The language is the word after the opening fence; the rest of that line is ignored.
    """
    blocks = []
    pos = 0
    while (start := text.find("```", pos)) != -1:
        eol = text.find("\n", start + 3)
        if eol == -1:
            break  # a fence with no line after it opens nothing, and neither can a later one
        lang = _FENCE_LANG.match(text, start + 3, eol).group(1)  # type: ignore[union-attr]
        end = text.find("```", eol + 1)
        if end == -1:
            blocks.append((lang, text[eol + 1 :]))
            break
        blocks.append((lang, text[eol + 1 : end]))
        pos = end + 3
    return blocks


def extract_code(text: str, entry_point: str, prefix: str | None = None) -> str | None:
    """The code to run, or None when the completion holds none (or is over MAX_CODE_CHARS).

    A fenced block that defines the entry point wins, then any Python block, then bare
    code from its first `import`/`def`/`class` line. A completion that only continues the
    prompt's function (HumanEval style) is appended to `prefix`.
    """
    if len(text) > MAX_CODE_CHARS:
        return None
    # A `def` line: only blanks before `def` on its own line. (Blank lines before it are
    # the same test: a `def` after them is on a line start of its own.)
    defines = re.compile(rf"^[^\S\n]*+def\s++{re.escape(entry_point)}\s*+\(", re.M)
    blocks = [(lang.lower(), body) for lang, body in fenced_blocks(text)]
    for _, body in blocks:
        if defines.search(body):
            return _with_prefix_imports(body, prefix)
    python = [b for lang, b in blocks if lang in ("python", "py", "python3", "")]
    if python and python[0].strip():
        return _join(prefix, python[0]) if prefix else python[0]
    if defines.search(text):
        m = _CODE_START.search(text)
        return _with_prefix_imports(text[m.start() :] if m else text, prefix)
    if (
        prefix
        and text.strip()
        and (text.startswith((" ", "\t")) or text.lstrip().startswith("return"))
    ):
        return _join(prefix, text)
    return None


def _join(prefix: str | None, body: str) -> str:
    if not prefix:
        return body
    # A body-only continuation must be indented under the prompt's `def`.
    lines = body.splitlines()
    if lines and not lines[0].startswith((" ", "\t")):
        lines = ["    " + ln if ln.strip() else ln for ln in lines]
    return prefix.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def _with_prefix_imports(code: str, prefix: str | None) -> str:
    """A full function from the model still needs the prompt's imports and helpers."""
    if not prefix:
        return code
    return prefix + "\n\n" + code
