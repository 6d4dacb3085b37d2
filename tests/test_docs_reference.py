"""The documentation is generated from the code where it can be, and checked against it where not.

The generated pages (docs/_gen/: the CLI from its parser, the methods from the registry, the
benchmark tables from benchmarks/results/*.json) must show what the code and files hold; the
hand-written pages must name only flags the CLI has, and every flag it has; and the site's
--strict build must fail on a broken link or anchor (so `make docs` in `make test` guards them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_gen"))

import benchmark_tables  # noqa: E402
import cli_reference  # noqa: E402
import hooks  # noqa: E402
import methods_reference  # noqa: E402

DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_gen" not in p.parts)]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return cli_reference.subcommands(cli_reference.parser())


def _flags(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


def test_cli_reference_lists_every_flag_with_its_default_and_choices() -> None:
    """Every option of every sub-command is in the generated page, with its default and choices."""
    text = cli_reference.render()
    for name, sub in _subparsers().items():
        assert f"## `explain {name}`" in text
        for a in sub._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            for flag in a.option_strings:
                assert f"`{flag}`" in text, f"explain {name} {flag} is missing from the CLI reference"
            if a.option_strings and a.choices:
                assert all(f"`{c}`" in text for c in a.choices)
    assert "| `--max-new-tokens` | `MAX_NEW_TOKENS` (int) | `8` |" in text
    assert "| `--granularity` | `word` \\| `token` | `word` |" in text


def test_methods_reference_shows_every_setting_and_default_from_the_registry() -> None:
    """Each registered method and each field of its Settings, with the registry's default."""
    text = methods_reference.render()
    for name, m in methods_reference.registry().items():
        assert f"## `{name}`" in text
        for f in dataclasses.fields(m.Settings):
            assert f"| `{name}.{f.name}` |" in text
            row = next(line for line in text.splitlines() if line.startswith(f"| `{name}.{f.name}` |"))
            assert f"`{f.default!r}`" in row, row
    assert "| `ig.n_steps` | `int` | `50` |" in text


def test_every_cli_flag_is_documented_and_every_documented_flag_exists() -> None:
    """`explain run`'s flags all appear in docs/cli.md, the other commands' somewhere in the docs;
    a flag written in an `explain ...` span of any page is one that command takes."""
    cli_md = (ROOT / "docs" / "cli.md").read_text()
    everything = "\n".join(p.read_text() for p in DOCS)
    subs = _subparsers()
    for name, sub in subs.items():
        where = cli_md if name == "run" else everything
        missing = sorted(f for f in _flags(sub) if not re.search(re.escape(f) + r"(?![\w-])", where))
        assert not missing, f"explain {name}: {missing} are not documented"
    for page in DOCS:
        for span in re.findall(r"`(explain [^`\n]+)`", page.read_text()):
            words = span.split()
            sub = subs.get(words[1]) if len(words) > 1 else None
            if sub is None:
                continue
            for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", span):
                assert flag in _flags(sub), f"{page.name}: `{span}`: explain {words[1]} has no {flag}"


def test_benchmark_tables_show_the_files_numbers(tmp_path: Path) -> None:
    """The speed table holds each row's figures as the file has them, formatted, never retyped."""
    data = json.loads((ROOT / "benchmarks" / "results" / "speed.json").read_text())
    text = benchmark_tables.render("speed")
    for row in data["rows"]:
        for key in ("whole_s_ours", "whole_s_direct", "whole_ratio"):
            assert benchmark_tables._fmt(row[key]) in text
    assert "From `benchmarks/results/speed.json` (measured" in text


def test_benchmark_tables_tolerate_new_fields_and_new_files(tmp_path: Path) -> None:
    """A field a benchmark adds is named under its table; a file no spec knows is rendered whole."""
    (tmp_path / "ray_throughput.json").write_text(json.dumps(
        {"rows": [{"engine": "ray", "workers": 2, "wall_s": 1.5, "gpu_util": 0.75}]}))
    text = benchmark_tables.render("ray_throughput", tmp_path)
    assert "| ray | 2 | 1.50 |" in text and "Also in the file: `gpu_util`." in text
    (tmp_path / "calibration.json").write_text(json.dumps(
        {"machine": {"date": "2027-01-02", "cpu_count": 2}, "threshold": 0.75,
         "rows": [{"method": "shap", "check": "stability", "flagged": 3, "wrong_top": 0.125}],
         "by_model": {"bert": {"auc": 0.91, "n": 40}, "gpt": {"auc": 0.88, "n": 40}}}))
    text = benchmark_tables.render("calibration", tmp_path)
    assert "measured 2027-01-02" in text
    assert "| rows[0] | shap | stability | 3 | 0.125 |" in text
    assert "| by_model.bert | 0.91 | 40 |" in text and "| `threshold` | 0.75 |" in text


def test_a_marker_that_names_nothing_stops_the_build() -> None:
    """An unknown marker or a missing benchmark file is an error naming the page, not an empty table."""
    with pytest.raises(hooks.GeneratedError, match="p.md: no benchmarks/results/nosuch.json"):
        hooks.expand("<!-- generated: benchmark nosuch -->", "p.md")
    with pytest.raises(hooks.GeneratedError, match="unknown marker"):
        hooks.expand("<!-- generated: clu -->", "p.md")
    page = hooks.expand("# B\n\n<!-- generated: benchmark startup -->\n\n<!-- generated: benchmarks-other -->\n")
    assert page.count("benchmarks/results/startup.json") == 1 and "### `speed.json`" in page


def test_readme_is_a_front_door() -> None:
    """The README stays short (the rest lives in docs/) and links only to files that exist."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.slow
def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    """The site's own settings turn a link to a missing anchor or page into a failed --strict build."""
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"(?ms)^nav:.*", "", config).replace("docs/_gen/hooks.py", str(ROOT / "docs/_gen/hooks.py"))
    config = re.sub(r"(?ms)^  - mkdocstrings:.*?(?=^\S)", "", config)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n## Here\n\n[ok](other.md#there) [self](#here)\n")
    (docs / "other.md").write_text("# Other\n\n## There\n")
    (tmp_path / "mkdocs.yml").write_text(config)
    # as `make docs` runs it (never --quiet: mkdocs then stops counting the warnings --strict fails on)
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")]
    env = {"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    (docs / "index.md").write_text("# Home\n\n[broken](other.md#nowhere)\n")
    bad = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "does not contain an anchor '#nowhere'" in bad.stderr
