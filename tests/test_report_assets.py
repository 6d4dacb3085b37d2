"""The report's JavaScript and CSS are files (reports/assets/): each script passes `node --check`, ships, and is inlined."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from explain import reports
from explain.reports import assets_files
import report_samples as samples

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(assets_files.FOLDER.glob("*.js"))


def node() -> str:
    """Return the node executable; fail (never skip) without it: CI installs it (make browser)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is missing: the report's JavaScript cannot be syntax-checked (apt-get install nodejs)")
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_each_script_passes_node_check(path: Path) -> None:
    done = subprocess.run([node(), "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{path.name}: {done.stderr}"


def test_node_check_catches_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.js"
    core = (assets_files.FOLDER / "core.js").read_text(encoding="utf-8")
    assert "function h(tag" in core
    broken.write_text(core.replace("function h(tag", "function h(tag,,", 1), encoding="utf-8")
    assert subprocess.run([node(), "--check", str(broken)], capture_output=True, timeout=60).returncode != 0


def test_every_script_and_style_file_is_inlined_in_the_page() -> None:
    html = reports.render(samples.text_results(2))
    for name in assets_files.SCRIPTS:
        assert f"<script>{assets_files.asset(name)}</script>" in html, name
    assert f"<style>{assets_files.report_css()}</style>" in html
    # Every file in the folder is one the page uses (a new file must be added to SCRIPTS).
    assert {p.name for p in SCRIPTS} == set(assets_files.SCRIPTS)
    assert {p.name for p in assets_files.FOLDER.glob("*.css")} == {assets_files.REPORT_CSS, assets_files.INDEX_CSS}


def test_no_javascript_or_css_left_in_python_strings() -> None:
    """The report's Python builds HTML; its scripts and style sheets live in reports/assets/ only."""
    for path in (ROOT / "reports").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"\(function \(\) \{", r"addEventListener\(", r"document\.querySelector", r"\{ *margin: *\d", r"@media"):
            assert not re.search(pattern, text), f"{path.name} holds JavaScript or CSS ({pattern})"


def test_assets_ship_as_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"assets/*.js"' in text and '"assets/*.css"' in text


def test_an_asset_that_could_close_its_element_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.js").write_text("const s = '</script><script>alert(1)';\n", encoding="utf-8")
    monkeypatch.setattr(assets_files, "FOLDER", tmp_path)
    assets_files.asset.cache_clear()
    try:
        with pytest.raises(ValueError, match="would end or confuse"):
            assets_files.asset("bad.js")
    finally:
        assets_files.asset.cache_clear()
