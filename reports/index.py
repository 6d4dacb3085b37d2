"""The index page of several reports (the demo, a folder of runs): one card per report with its one-line verdict."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .answer import true_label
from .assets_files import index_css
from .data import method_title
from .encode import esc
from .evidence import weak_evidence
from .quality import flagged

if TYPE_CHECKING:
    from explain.results.explanation import Results


@dataclass(frozen=True)
class IndexEntry:
    """One report on the index: its title, its file (relative to the index), and the Results it shows."""

    title: str
    href: str
    results: Results | None = None
    note: str = ""


def verdict(results: Results) -> str:
    """Return the run's one-line verdict: inputs, accuracy where known, flagged and no-evidence explanations."""
    n = len(results.inputs)
    parts = [f"{n:,} input{'s' if n != 1 else ''}"]
    known = [(true_label(results, r), r) for r in results.inputs if r.prediction is not None and r.kind != "prompt"]
    known = [(t, r) for t, r in known if t is not None]
    if known:
        right = sum(t == str(r.prediction.label) for t, r in known if r.prediction is not None)
        parts.append(f"accuracy {right}/{len(known)}")
    bad = sum(1 for e in results if flagged(e))
    quiet = sum(1 for e in results if weak_evidence(e))
    parts.append("every explanation passed its self-checks" if not bad else f"{bad} of {len(results):,} explanations flagged unreliable")
    if quiet:
        parts.append(f"{quiet} with no or weak evidence")
    failed = {int(f.input) for f in results.failures}
    if failed:
        parts.append(f"{len(failed)} input{'s' if len(failed) != 1 else ''} with failures")
    return " · ".join(parts)


def _entry(x: IndexEntry | Mapping[str, Any]) -> IndexEntry:
    if isinstance(x, IndexEntry):
        return x
    return IndexEntry(str(x["title"]), str(x["href"]), x.get("results"), str(x.get("note", "")))


def render_index(entries: Sequence[IndexEntry | Mapping[str, Any]], title: str = "explain reports") -> str:
    """Return the index page (self-contained HTML, no script) for `entries`."""
    cards = []
    for x in map(_entry, entries):
        r = x.results
        meta = ""
        if r is not None:
            methods = r.run.get("methods") or list(dict.fromkeys(e.method for e in r))
            meta = (f'<div class="muted">{esc(r.model.family)} · {esc(os.path.basename(str(r.model.path).rstrip("/")))} · '
                    f'{esc(", ".join(method_title(str(m)) for m in methods))}</div>'
                    f'<p class="verdict-line">{esc(verdict(r))}</p>')
        note = f'<p class="muted">{esc(x.note)}</p>' if x.note else ""
        cards.append(f'<a class="icard" href="{esc(x.href)}"><h2>{esc(x.title)}</h2>{meta}{note}<span class="open">Open report →</span></a>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n<style>{index_css()}</style>\n</head>\n<body>\n'
        f'<header class="bar"><div class="brand">explain <span>reports</span></div></header>\n<main>\n<h1>{esc(title)}</h1>'
        f'<p class="lede">One report per model: what it predicted, why, and whether the explanations can be trusted.</p>'
        f'<div class="icards">{"".join(cards)}</div>\n</main>\n</body>\n</html>\n'
    )


def write_index(entries: Sequence[IndexEntry | Mapping[str, Any]], path: str | os.PathLike[str], title: str = "explain reports") -> Path:
    """Write the index of `entries` (IndexEntry or {'title', 'href', 'results', 'note'}) to `path`; return the path."""
    from explain.results.results_io import write_atomic

    path = Path(path)
    write_atomic(path, render_index(entries, title))
    return path
