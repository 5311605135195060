"""Find the program in a completion: fenced or bare, whole function or body only."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(?:from\s+\S+\s+import|import\s+\S|def\s+\w|class\s+\w|@\w)", re.M)


def extract_code(text: str, entry_point: str, prefix: str | None = None) -> str | None:
    """The code to run, or None when the completion holds none.

    A fenced block that defines the entry point wins, then any Python block, then bare
    code from its first `import`/`def`/`class` line. A completion that only continues the
    prompt's function (HumanEval style) is appended to `prefix`.
    """
    defines = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.M)
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
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
