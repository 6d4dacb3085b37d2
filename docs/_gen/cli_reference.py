"""The command-line reference, rendered from `explain`'s own argument parser (never written twice).

    python docs/_gen/cli_reference.py          # print the Markdown

Each sub-command gets its usage line, description, and a table of its arguments by group: the
flags, the value they take, the default and the choices exactly as `build_parser()` declares
them, and the parser's help text. A flag added to the parser appears here on the next build.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    """Return the CLI's full parser (with the method names `run --help` lists)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from explain.cli.main import build_parser

    return build_parser(None)


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Return {name: parser} for every sub-command, in the order `explain --help` lists them."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def render() -> str:
    """Return the Markdown reference of every sub-command."""
    top = parser()
    out = [f"`{top.prog}` {_first_line(top.description)}", "", _code(top.format_usage().strip())]
    helps = _sub_helps(top)
    for name, sub in subcommands(top).items():
        out += ["", f"## `explain {name}`", ""]
        text = sub.description or helps.get(name, "")
        if text:
            out += [_escape_text(text), ""]
        out += [_code(sub.format_usage().strip()), ""]
        # the groups a command declares first, argparse's catch-all "options" (--quiet, --verbose) last
        groups = sorted(sub._action_groups, key=lambda g: g.title in ("options", "optional arguments")
                        and any(x.title not in ("options", "optional arguments", "positional arguments")
                                for x in sub._action_groups))
        for group in groups:
            actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
            if not actions:
                continue
            title = {"positional arguments": "arguments", "options": "options", "optional arguments": "options"}.get(
                group.title or "", group.title or "")
            out += [f"**{title}**", "", "| argument | value | default | help |", "|---|---|---|---|"]
            out += [_row(a) for a in actions]
            out.append("")
        if sub.epilog:
            out += [_code(sub.epilog.strip()), ""]
    return "\n".join(out).rstrip() + "\n"


def _row(a: argparse.Action) -> str:
    """Return one table row: flags, the value it takes, its default, its help."""
    flags = ", ".join(f"`{f}`" for f in a.option_strings) or f"`{a.dest}`"
    value = _value(a)
    default = "" if a.default in (None, [], False, argparse.SUPPRESS) or not a.option_strings else f"`{a.default}`"
    if a.required and a.option_strings:
        default = "required"
    help_text = _escape_text(a.help or "")
    if a.nargs in ("*", "+") and not a.option_strings:
        help_text += " (any number)" if a.nargs == "*" else " (one or more)"
    if isinstance(a, argparse._AppendAction):
        help_text += " (repeatable)" if "repeatable" not in help_text else ""
    return f"| {flags} | {value} | {default} | {help_text} |"


def _value(a: argparse.Action) -> str:
    """Return what a flag takes: its choices, its metavar, or nothing for a switch."""
    if a.nargs == 0:
        return ""
    if a.choices is not None:
        return " \\| ".join(f"`{c}`" for c in a.choices)
    meta: Any = a.metavar or (a.dest.upper() if a.option_strings else "")
    typ = getattr(a.type, "__name__", "")
    text = f"`{meta}`" if meta else ""
    if typ in ("int", "float"):
        text += f" ({typ})"
    if a.nargs == "?":
        text += " (optional)"
    return text


def _sub_helps(p: argparse.ArgumentParser) -> dict[str, str]:
    """Return each sub-command's one-line help as `explain --help` shows it."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {c.dest: c.help or "" for c in action._choices_actions}
    return {}


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


def _escape_text(text: str) -> str:
    """Make argparse help safe inside a Markdown table cell (pipes, angle brackets, %%)."""
    return " ".join(text.replace("%%", "%").replace("|", "\\|").replace("<", "&lt;").split())


def _code(text: str) -> str:
    return f"```text\n{text}\n```"


if __name__ == "__main__":
    print(render())
