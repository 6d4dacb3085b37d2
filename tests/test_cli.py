"""The CLI as a user runs it: a subprocess, its exit code, its files and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli


def assert_user_error(proc, text: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 or lines[0].startswith("usage:"), proc.stderr
    assert text in proc.stderr, proc.stderr


def test_help_has_examples() -> None:
    proc = run_cli("run", "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--methods" in proc.stdout
    for cmd in ("methods", "inspect", "report", "demo"):
        assert run_cli(cmd, "--help").returncode == 0


def test_run_writes_results_and_report(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("run", str(tiny_bert), "--text", "the movie was unwatchable", "--text", "a great film",
                   "--methods", "ig,shap", "--set", "shap.max_evals=80", "--target", "positive", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert [e["method"] for e in doc["explanations"]] == ["ig", "shap", "ig", "shap"]
    assert all(e["target"]["label"] == "positive" for e in doc["explanations"])
    assert doc["explanations"][1]["settings"]["max_evals"] == 80
    assert (out / "report.html").stat().st_size > 0
    assert "results:" in proc.stdout and "report:" in proc.stdout and "ig" in proc.stdout

    # the output folder is not overwritten without --force
    again = run_cli("run", str(tiny_bert), "--text", "x", "--out", str(out))
    assert_user_error(again, "--force")
    # re-render the saved run
    html = tmp_path / "again.html"
    rep = run_cli("report", str(out / "results.json"), "--out", str(html))
    assert rep.returncode == 0, rep.stderr
    assert html.stat().st_size > 0


def test_a_bad_line_fails_alone(tiny_bert: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "a great film"}\n{"text": broken\n{"text": ""}\n"the plot was bad"\n', encoding="utf-8")
    out = tmp_path / "out"
    proc = run_cli("run", str(tiny_bert), "--input", str(data), "--out", str(out), "--no-report")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert sorted({e["input"] for e in doc["explanations"]}) == [0, 3]
    errors = {f["input"]: f["error"] for f in doc["failures"]}
    assert "not valid JSON" in errors[1] and "empty" in errors[2]
    # --quiet prints warnings only: the failed inputs still are (one line each), nothing else
    quiet = run_cli("run", str(tiny_bert), "--input", str(data), "--out", str(out), "--no-report", "--force", "--quiet")
    assert quiet.returncode == 1 and quiet.stdout == ""
    lines = quiet.stderr.strip().splitlines()
    assert len(lines) == 2 and all(l.startswith("explain: warning: failed: ") for l in lines), quiet.stderr
    assert "input 1" in lines[0] and "not valid JSON" in lines[0] and "input 2" in lines[1] and "empty" in lines[1]


def test_methods_and_inspect(tiny_bert: Path) -> None:
    proc = run_cli("methods")
    assert proc.returncode == 0 and "ig" in proc.stdout and "text-classifier" in proc.stdout and "ig.n_steps" in proc.stdout
    proc = run_cli("inspect", str(tiny_bert))
    assert proc.returncode == 0, proc.stderr
    assert "text-classifier" in proc.stdout and "negative, neutral, positive" in proc.stdout and "heads" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "/no/such/folder", "--text", "x"], "checkpoint not found"),
        (["run", "{bert}", "--text", "x", "--methods", "magic"], "unknown method 'magic'"),
        (["run", "{bert}", "--text", "x", "--methods", "gradcam"], "does not serve text-classifier"),
        (["run", "{bert}", "--image", "a.png"], "--image needs an image classifier"),
        (["run", "{bert}"], "no inputs"),
        (["run", "{bert}", "--text", "x", "--target", "happy"], "unknown target label 'happy'"),
        (["run", "{bert}", "--text", "x", "--set", "ig.steps=3"], "unknown setting 'steps'"),
        (["run", "{bert}", "--text", "x", "--set", "nonsense"], "METHOD.OPTION=VALUE"),
        (["run", "{bert}", "--input", "{latin1}"], "not UTF-8"),
        (["report", "/no/such/results.json"], "no results file"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tiny_bert: Path, tmp_path: Path, args: list[str], message: str) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    filled = [a.replace("{bert}", str(tiny_bert)).replace("{latin1}", str(latin1)) for a in args]
    if filled[0] == "run":
        filled += ["--out", str(tmp_path / "o")]
    assert_user_error(run_cli(*filled), message)


def test_cuda_on_cpu_machine(tiny_bert: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_user_error(run_cli("run", str(tiny_bert), "--text", "x", "--device", "cuda", "--out", str(tmp_path)), "CUDA is not available")


def test_metrics_on_run_and_evaluate_a_saved_run(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = run_cli("run", str(tiny_bert), "--text", "the movie was unwatchable", "--methods", "ig,ablation",
                   "--metrics", "faithfulness,agreement", "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert all("deletion_auc" in e["metrics"] and "comprehensiveness_random" in e["metrics"] for e in doc["explanations"])
    saved = (out / "results.json").read_bytes()
    ev = run_cli("evaluate", str(out / "results.json"), "--checkpoint", str(tiny_bert), "--metrics", "faithfulness")
    assert ev.returncode == 0, ev.stderr
    assert (out / "evaluated" / "results.json").exists() and (out / "evaluated" / "report.html").exists()
    assert (out / "results.json").read_bytes() == saved  # the saved run is never overwritten
    other = tmp_path / "other"
    from conftest import save_bert

    save_bert(other, seed=3)
    wrong = run_cli("evaluate", str(out / "results.json"), "--checkpoint", str(other), "--out", str(tmp_path / "x"))
    assert_user_error(wrong, "made with another checkpoint")


def test_the_fast_exit_finishes_what_a_normal_exit_would(tmp_path: Path) -> None:
    """`leave` skips the interpreter's teardown (~1 s) but joins threads, runs atexit and flushes.

    Without the join the thread's file would be missing; without atexit its line; without the
    flush most of the 200,000 characters written to a pipe; and the exit code must survive.
    """
    import subprocess
    import sys
    import textwrap

    marker = tmp_path / "thread-done"
    script = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from pathlib import Path
        from explain.cli.main import leave

        def late() -> None:
            time.sleep(0.5)
            Path({str(marker)!r}).write_text("done")

        threading.Thread(target=late).start()  # non-daemon: a normal exit waits for it
        atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
        sys.stdout.write("x" * 200_000)
        leave(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert proc.stdout == "x" * 200_000
    assert proc.stderr == "atexit ran\n"
    assert marker.read_text() == "done"


def test_the_console_script_uses_the_fast_exit() -> None:
    import tomllib

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["explain"] == "explain.cli.main:entry"


def _explain(*args: str) -> list[str]:
    """Return the command line that runs `explain ARGS` through the console script's entry."""
    import sys

    return [sys.executable, "-m", "explain.cli.main", *args]


def _env(unbuffered: bool) -> dict[str, str]:
    import os

    from conftest import ROOT

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:  # print writes at once: the error surfaces inside the command, not at the final flush
        env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_closed_pipe_is_a_normal_end(unbuffered: bool) -> None:
    """`explain methods | head -1`: the reader left before the output was written; exit 0, say nothing.

    The read end is closed before the command prints (it imports torch first), so every write
    meets a closed pipe, as the slowest `head` would leave it.
    """
    import subprocess

    proc = subprocess.Popen(_explain("methods"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(unbuffered))
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `head` has read what it wanted and gone
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


def test_head_of_the_method_list_in_a_shell_pipe() -> None:
    """The shell pipeline itself, with pipefail: explain's status is the pipe's."""
    import shlex
    import subprocess

    cmd = " ".join(shlex.quote(a) for a in _explain("methods"))
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"{cmd} | head -1"], capture_output=True, text=True,
                          env=_env(False), timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("method") and proc.stdout.count("\n") == 1


@pytest.mark.parametrize("args,unbuffered", [(("methods",), False), (("methods",), True), (("--version",), False)])
def test_output_lost_to_a_full_disk_is_an_error(args: tuple[str, ...], unbuffered: bool) -> None:
    """Writing to /dev/full (every write fails with ENOSPC): non-zero, one line, no traceback.

    Buffered, `--version`'s few bytes fail only at the final flush (the fast exit once swallowed
    that); `methods` fails inside the command, buffered or not. (Unbuffered, argparse itself
    drops a failed `--help` or `--version` write, so that case is not ours to see.)
    """
    import subprocess

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        proc = subprocess.run(_explain(*args), stdout=full, stderr=subprocess.PIPE, text=True, env=_env(unbuffered), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("explain: error:") and "No space left" in lines[0], proc.stderr


def test_a_broken_pipe_that_is_not_stdout_is_still_a_bug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the reader of stdout leaving is a normal end: a worker's or a socket's pipe is exit 3."""
    from explain.cli import commands, main

    def broken(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(commands, "methods", broken)
    assert main.main(["methods"]) == main.EXIT_INTERNAL
    assert "internal error: BrokenPipeError" in capsys.readouterr().err
