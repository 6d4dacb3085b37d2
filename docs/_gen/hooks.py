"""mkdocs hook: fills each `<!-- generated: WHAT [ARGS] -->` line of a page from the code.

    <!-- generated: cli -->                 the CLI reference, from explain's argument parser
    <!-- generated: methods -->             every method's settings and defaults, from the registry
    <!-- generated: benchmark NAME -->      the tables of benchmarks/results/NAME.json
    <!-- generated: benchmarks -->          every file in benchmarks/results/, one section each
    <!-- generated: benchmarks-other -->    every file the page has not rendered above this line

Named in mkdocs.yml (`hooks:`). An unknown WHAT, or a benchmark file that does not exist, stops
the build with an error naming the page, so a marker cannot silently render nothing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import benchmark_tables  # noqa: E402
import cli_reference  # noqa: E402
import methods_reference  # noqa: E402

MARKER = re.compile(r"^<!-- generated: ([\w-]+)(?: ([\w.-]+))? -->$", re.M)


class GeneratedError(Exception):
    """A marker that names nothing this hook can render."""


def expand(markdown: str, where: str = "") -> str:
    """Return `markdown` with every generated marker replaced by its rendering."""
    rendered: list[str] = []  # the benchmark files this page has shown so far

    def one(m: re.Match[str]) -> str:
        what, arg = m.group(1), m.group(2)
        if what == "cli":
            return cli_reference.render()
        if what == "methods":
            return methods_reference.render()
        if what == "benchmarks":
            return benchmark_tables.render_all()
        if what == "benchmarks-other":
            rest = [n for n in benchmark_tables.available() if n not in rendered]
            return "\n".join(f"### `{n}.json`\n\n{benchmark_tables.render(n)}" for n in rest)
        if what == "benchmark" and arg:
            if arg not in benchmark_tables.available():
                raise GeneratedError(f"{where}: no benchmarks/results/{arg}.json (have: {', '.join(benchmark_tables.available())})")
            rendered.append(arg)
            return benchmark_tables.render(arg)
        raise GeneratedError(f"{where}: unknown marker {m.group(0)!r}")

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """mkdocs event: expand the page's markers before it is converted to HTML."""
    return expand(markdown, page.file.src_uri)
