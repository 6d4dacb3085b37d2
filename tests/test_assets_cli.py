"""--assets shared: plotly.js written once beside the reports, each page loading it from there."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli

from explain.reports.plotly_bundle import ASSET_NAME


def test_run_and_report_with_a_shared_plotly(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", str(tiny_bert), "--text", "a great film", "--methods", "ig", "--out", str(out), "--assets", "shared", "--quiet")
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert (out / ASSET_NAME).is_file() and ASSET_NAME in page
    assert 'data-encoding="gzip-base64"' not in page  # the bundle is not inside the page
    inline = tmp_path / "again" / "report.html"
    proc = run_cli("report", str(out / "results.json"), "--out", str(inline))
    assert proc.returncode == 0, proc.stderr
    text = inline.read_text(encoding="utf-8")
    assert 'data-encoding="gzip-base64"' in text and not (inline.parent / ASSET_NAME).exists()
    assert len(text) > len(page) + 500_000  # self-contained: the bundle is inside
