"""The methods reference, rendered from the method registry (never written twice).

    python docs/_gen/methods_reference.py      # print the Markdown

One table of which method serves which family, then per method its title, reference and a table
of every setting: its name as `--set METHOD.NAME=...` takes it, its type and default read from
the method's Settings dataclass, and the help text declared beside the field.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("text-classifier", "causal-lm", "image-classifier")


def registry() -> dict[str, Any]:
    """Return the registered methods, in the order `explain methods` lists them."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from explain.methods import registry as reg

    return dict(reg.REGISTRY)


def render() -> str:
    """Return the Markdown: the family table, then each method's settings."""
    methods = registry()
    out = ["| method | " + " | ".join(FAMILIES) + " | title |", "|---|" + "---|" * len(FAMILIES) + "---|"]
    for name, m in methods.items():
        marks = " | ".join("yes" if f in m.families else "" for f in FAMILIES)
        out.append(f"| [`{name}`](#{name}) | {marks} | {m.title} |")
    for name, m in methods.items():
        out += ["", f"## `{name}`", "", f"**{m.title}**; serves {', '.join(m.families)}."]
        if m.reference:
            out.append(f"Reference: <{m.reference}>.")
        out += ["", f"| setting | type | default | meaning |", "|---|---|---|---|"]
        hints = typing.get_type_hints(m.Settings)
        for f in dataclasses.fields(m.Settings):
            out.append(f"| `{name}.{f.name}` | `{_type(hints[f.name])}` | {_default(f)} | {_cell(f.metadata.get('help', ''))} |")
    return "\n".join(out) + "\n"


def _default(f: dataclasses.Field[Any]) -> str:
    """Return a field's default as the registry holds it (None: chosen for the model family)."""
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        return f"`{f.default_factory()!r}`"
    return "required"


def _type(hint: Any) -> str:
    """Return a readable type: int, str | None, tuple[int, int] ..."""
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    return text.replace(" | ", " or ")  # a pipe would end the table cell


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "\\|").replace("<", "&lt;").split())


if __name__ == "__main__":
    print(render())
