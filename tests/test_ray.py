"""--engine ray on a local 2-worker cluster: same answers as in-process, faults, sharded results.

The Ray runs go through the CLI as a user runs them. Two clusters start in this module (one
run with a killed worker, one interrupted then resumed); the rest reads their output or fails
before Ray starts.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import explain
from conftest import FILLER, ROOT, SENTIMENT, blocking_env, ctrl_c_default, interrupt, run_cli
from explain.distributed import open_sharded, read_file
from explain.results.shards import Store, shard_files, write_shard

import ray  # the distributed extra is part of `make setup`: a missing ray fails, never skips
pytestmark = pytest.mark.slow

N_JSONL, N_PARQUET = 220, 80  # 300 inputs over two files: global numbering crosses a file boundary
BAD_LINES = {5: "{broken", 60: '{"text": ""}'}
CRASH_AT = 77  # the worker that meets this input dies once (os._exit), its batch is retried
POISON_AT = 150  # the worker that meets this input dies every time: recorded as that input's failure
COMMON = ["--engine", "ray", "--workers", "2", "--methods", "ablation", "--seed", "0"]


def _texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(FILLER + SENTIMENT) for _ in range(rnd.randint(3, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A JSONL file with two bad lines and a Parquet file: 300 inputs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("ray-data")
    lines = [json.dumps({"text": t}) for t in _texts(N_JSONL, 1)]
    for i, bad in BAD_LINES.items():
        lines[i] = bad
    (folder / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": _texts(N_PARQUET, 2)}), folder / "in.parquet")
    return [folder / "in.jsonl", folder / "in.parquet"]


@pytest.fixture(scope="module")
def reference(tiny_bert: Path, data: list[Path]) -> explain.Results:
    """The in-process run of the same job."""
    items = [x for f in data for x in read_file(str(f))]
    with pytest.warns(explain.ExplainWarning, match="2 of 300 inputs failed"):  # the two bad JSONL lines
        return explain.explain(explain.load(tiny_bert), items, methods=["ablation"], seed=0, errors="record")


@pytest.fixture(scope="module")
def ray_run(tiny_bert: Path, data: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, Path, float]:
    """One CLI run on a local Ray cluster with 2 workers, one of which is killed mid-batch."""
    folder = tmp_path_factory.mktemp("ray-run")
    out, marker = folder / "out", folder / "crashed"
    os.environ["EXPLAIN_RAY_TEST_CRASH_AT"] = f"{CRASH_AT}:{marker},{POISON_AT}:always"
    try:
        t0 = time.perf_counter()
        proc = run_cli("run", str(tiny_bert), "--input", str(data[0]), "--input", str(data[1]), *COMMON,
                       "--shard-size", "32", "--out", str(out), timeout=240)
        seconds = time.perf_counter() - t0
    finally:
        del os.environ["EXPLAIN_RAY_TEST_CRASH_AT"]
    return proc, out, marker, seconds


def _same(a: explain.Results, b: explain.Results) -> None:
    no_time = lambda r: [e.replace(seconds=0.0) for e in r]  # noqa: E731
    assert a.model == b.model
    assert a.inputs == b.inputs
    assert a.failures == b.failures
    assert no_time(a) == no_time(b)


def test_ray_run_equals_in_process_despite_a_killed_worker(ray_run: Any, reference: explain.Results) -> None:
    proc, out, marker, seconds = ray_run
    assert proc.returncode == 1, proc.stderr  # two bad lines: recorded, the others explained
    assert "Traceback" not in proc.stderr
    assert marker.exists(), "the crash hook never fired"  # a worker died on input CRASH_AT ...
    merged = explain.open_results(out)  # ... and its batch was retried: every input is there
    assert [r.index for r in merged.inputs] == list(range(N_JSONL + N_PARQUET))
    errors = {f.input: f.error for f in merged.failures}
    assert set(errors) == {*BAD_LINES, POISON_AT} and "not valid JSON" in errors[5] and "empty" in errors[60]
    assert "worker process died 2 times" in errors[POISON_AT]  # an input that kills every worker is skipped
    poisoned = lambda r: explain.Results([e for e in r if e.input != POISON_AT], model=r.model,  # noqa: E731
                                         inputs=[x for x in r.inputs if x.index != POISON_AT],
                                         failures=[f for f in r.failures if f.input != POISON_AT])
    _same(poisoned(merged), poisoned(reference))  # every other input as in-process
    assert not list((out / "inflight").glob("*"))  # no death markers left behind
    assert "3 failure(s)" in proc.stdout and "results:" in proc.stdout and "report:" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["inputs"] == N_JSONL + N_PARQUET
    assert sum(s["inputs"] for s in manifest["shards"]) == N_JSONL + N_PARQUET
    print(f"ray run of {N_JSONL + N_PARQUET} inputs: {seconds:.1f}s")


def test_every_shard_is_a_results_file_and_the_report_renders(ray_run: Any, tmp_path: Path) -> None:
    _, out, _, _ = ray_run
    files = shard_files(Store(out))
    assert len(files) >= 2
    for *_, rel in files:
        part = explain.open_results(out / rel)  # each shard is an ordinary explain.results/1 file
        assert part.inputs and all(e.input in {r.index for r in part.inputs} for e in part)
    html = (out / "report.html").read_text(encoding="utf-8")  # the dataset-level view of 300 inputs
    assert 'id="dataset"' in html and 'id="sample-note"' in html and "Showing 100 of 300 inputs" in html
    rep = run_cli("report", str(out), "--out", str(tmp_path / "again.html"))
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "again.html").stat().st_size > 0


def test_an_existing_output_needs_resume_or_force(ray_run: Any, tiny_bert: Path, data: list[Path]) -> None:
    _, out, _, _ = ray_run
    proc = run_cli("run", str(tiny_bert), "--input", str(data[0]), *COMMON, "--out", str(out))
    assert proc.returncode == 2 and "--resume" in proc.stderr and "Traceback" not in proc.stderr


def test_interrupt_keeps_finished_shards_and_resume_completes(tiny_bert: Path, data: list[Path], reference: explain.Results, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", str(tiny_bert), "--input", str(data[0]), "--input", str(data[1]), *COMMON, "--shard-size", "8", "--out", str(out)]
    # The workers' model calls block by themselves once 3 shards are written (blocking_env), so
    # the Ctrl-C always lands mid-run, however fast the machine.
    env = blocking_env(out / "shards" / "part-*.json", 3)
    proc = subprocess.Popen([sys.executable, "-m", "explain.cli.main", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(shard_files(Store(out))) < 3 and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    stderr = interrupt(proc, timeout=180)  # Ctrl-C
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    kept = shard_files(Store(out))
    assert kept and all(not n.startswith(".") for n in os.listdir(out / "shards") if n.endswith(".json"))
    partial = explain.open_results(out)  # the finished shards are valid and readable now
    assert 0 < len(partial.inputs) < N_JSONL + N_PARQUET

    again = run_cli(*args, "--resume", timeout=240)
    assert again.returncode == 1, again.stderr  # the two bad lines fail again
    assert "already in shards" in again.stdout
    _same(explain.open_results(out), reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["attempt"] == 1 and manifest["status"] == "complete"


def test_resume_refuses_another_job(ray_run: Any, tiny_bert: Path, data: list[Path], tmp_path: Path) -> None:
    import shutil

    _, out, _, _ = ray_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    proc = run_cli("run", str(tiny_bert), "--input", str(data[0]), "--input", str(data[1]), *COMMON[:-2], "--seed", "1",
                   "--out", str(copy), "--resume")
    assert proc.returncode == 2 and "cannot resume" in proc.stderr and "seed" in proc.stderr
    fewer = run_cli("run", str(tiny_bert), "--input", str(data[0]), *COMMON, "--out", str(copy), "--resume")
    assert fewer.returncode == 2 and "number of inputs" in fewer.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--methods", "gradcam"], "does not serve text-classifier"),
        (["--metrics"], "not available with --engine ray"),
        (["--set", "ablation.nope=1"], "unknown setting 'nope'"),
        (["--input", "/no/such.jsonl"], "input file not found"),
    ],
)
def test_user_errors_fail_before_ray_starts(tiny_bert: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    t0 = time.perf_counter()
    proc = run_cli("run", str(tiny_bert), "--text", "a great film", *COMMON, *extra, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert time.perf_counter() - t0 < 30


def test_sharded_reader_takes_each_input_from_its_newest_attempt(reference: explain.Results, tmp_path: Path) -> None:
    """No Ray: shards written by hand, one input re-explained by a later attempt (resume)."""
    from explain.results.shards import LAYOUT, write_manifest

    def part(indices: range, failures: bool = True) -> explain.Results:
        keep = set(indices)
        return explain.Results([e for e in reference if e.input in keep], model=reference.model,
                               inputs=[r for r in reference.inputs if r.index in keep],
                               failures=[f for f in reference.failures if f.input in keep and failures], run=reference.run)

    uri = (tmp_path / "out").as_uri()  # file://...: the pyarrow filesystem path, as for s3://
    store = Store(uri)
    write_manifest(store, {"layout": LAYOUT, "run": reference.run, "inputs": 300})
    write_shard(store, part(range(0, 150)), 0)
    write_shard(store, part(range(150, 300)), 0)
    fixed = part(range(5, 6), failures=False)  # attempt 1 "fixed" input 5: no failure recorded
    write_shard(store, fixed, 1)
    merged = open_sharded(uri)
    assert [f.input for f in merged.failures] == [60]
    assert [r.index for r in merged.inputs] == list(range(300))
    assert explain.open_results(uri).inputs == merged.inputs


def test_explain_errors_are_found_inside_ray_errors() -> None:
    from explain.distributed.ray_engine import _explain_error
    from explain.errors import TargetError

    try:
        try:
            raise TargetError("unknown target label 'happy'")
        except TargetError as inner:
            raise RuntimeError("ray.exceptions.RayTaskError(UserCodeException)") from inner
    except RuntimeError as outer:
        found = _explain_error(outer)
    assert isinstance(found, TargetError) and "happy" in str(found)
    assert _explain_error(ValueError("x")) is None


def _worker(checkpoint: Path, out: Path, **job: Any) -> Any:
    from explain.distributed.ray_engine import Worker

    config = {"checkpoint": str(checkpoint), "load": {"device": "cpu"}, "job": {"methods": ["ablation"], "seed": 0, **job},
              "out": str(out), "attempt": 0, "threads": 1, "expect_hash": None, "cwd": os.getcwd(), "crash": None}
    return type("Worker", (Worker,), {"config": config})()


def _batch(indices: list[int], texts: list[str]) -> Any:
    import pyarrow as pa

    from explain.distributed.sources import encode_item

    return pa.table({"index": pa.array(indices, pa.int64()), "item": pa.array([encode_item(t) for t in texts])})


def test_a_worker_writes_a_shard_and_reports_errors_as_answers(tiny_bert: Path, tmp_path: Path) -> None:
    """No Ray: the actor class alone. Errors come back as one line, never as a raised exception."""
    from conftest import save_bert

    worker = _worker(tiny_bert, tmp_path / "out")
    row = json.loads(worker(_batch([10, 11, 13], ["a great film", "", "dull"]))["summary"][0])
    assert row["file"] == "shards/part-000000010-000000013.r0.json" and row["inputs"] == 3  # a gap: two runs
    saved = explain.open_results(tmp_path / "out" / row["file"])
    assert [r.index for r in saved.inputs] == [10, 11, 13] and [f.input for f in saved.failures] == [11]

    bad_target = _worker(tiny_bert, tmp_path / "o2", target="happy")
    assert "unknown target label 'happy'" in json.loads(bad_target(_batch([0], ["x"]))["summary"][0])["error"]

    broken = save_bert(tmp_path / "broken")
    cfg = json.loads((broken / "config.json").read_text())
    cfg["id2label"] = {str(i): f"L{i}" for i in range(5)}
    cfg["label2id"] = {f"L{i}": i for i in range(5)}
    (broken / "config.json").write_text(json.dumps(cfg))
    dead = _worker(broken, tmp_path / "o3")  # the model cannot load: the actor still starts ...
    error = json.loads(dead(_batch([0], ["x"]))["summary"][0])["error"]  # ... and answers with the error
    assert error.startswith("cannot load the model") and "\n" not in error


def test_the_run_puts_rays_data_context_and_logger_back() -> None:
    """Ray's process-wide DataContext and the ray.data logger are the caller's again after a run ends or fails."""
    import logging

    from ray.data import DataContext

    from explain.distributed import ray_engine

    ctx = DataContext.get_current()
    log = logging.getLogger("ray.data")
    log.setLevel(logging.WARNING)
    before = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.max_consecutive_actor_init_deaths, log.level)
    seen: list[tuple[Any, ...]] = []
    options = ray_engine.RayOptions(verbose=not before[0])

    def run() -> Any:  # a run as _execute makes it, inside the settings it sets and puts back
        with ray_engine._ray_data_settings(options.verbose) as log:
            seen.append((ctx.enable_progress_bars, ctx.max_consecutive_actor_init_deaths))
            log.setLevel(logging.CRITICAL)
            yield {"shard": 0}
            raise RuntimeError("the cluster went away")

    with pytest.raises(RuntimeError, match="went away"):
        list(run())
    assert seen == [(not before[0], 1)]  # the run's own settings while it ran
    assert (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.max_consecutive_actor_init_deaths, log.level) == before
