"""Every command and Python snippet the docs show runs here, on the bundled models.

The fenced ```bash and ```python blocks of README.md and docs/**/*.md are extracted (docs/_gen/
is code, not a page); ```json blocks must parse. A block runs unless the line just above its
fence says why it cannot:

    <!-- not run: a hub id, nothing is downloaded -->

Such a block is checked another way: each `explain ...` line goes through the CLI's own parser
(flags, choices, types), its `--methods` names and `--set` settings through the method registry;
`make T` must name a Makefile target, `python FILE` an existing file; a Python block must
compile, and every `explain.NAME(...)` it calls must exist and take the keywords it is given.

Runnable blocks run in order, page by page, in one shared sandbox folder, as a user's working
folder after a clone: `examples/` is there (a link to this checkout's), and so are the few input
files the docs name (`SANDBOX_FILES`). An `explain` line runs through the CLI's `main()` in this
process (no interpreter start per command) and must exit 0; a run's output folder is emptied
first, as if it were the reader's first run. A page's Python blocks share one namespace, as in a
notebook. A command or block seen before (README and a page showing the same) runs once.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>[^>]*?)\s*-->\s*$")
SHELLS = ("bash", "sh", "shell", "console")
# Programs a not-run block may name besides `explain`, and how each is checked.
OTHER_PROGRAMS = ("make", "python", "python3", "pip", "ray", "huggingface-cli", "source")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, text, line and the not-run reason, if any."""

    page: str
    line: int
    lang: str
    body: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Return README.md and every docs page, in a stable order."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_gen" not in p.parts)
    return [ROOT / "README.md", *docs]


def blocks(path: Path) -> list[Block]:
    """Return the fenced blocks of one Markdown file."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        body = "\n".join(x[len(m.group("indent")):] for x in m.group("body").splitlines())
        out.append(Block(rel, line, m.group("lang").lower(), body, marker.group("why") if marker else None))
    return out


def commands(body: str) -> list[list[str]]:
    """Return the shell lines of a block as argument lists (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


# --- the sandbox: a user's working folder --------------------------------------------------

SANDBOX_FILES = {
    "reviews.csv": "review,label\na delightful film with a charming cast,positive\nawful plot and dull acting,negative\n",
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working folder with examples/ and the input files the docs name; cwd while a block runs."""
    folder = tmp_path_factory.mktemp("docs-sandbox")
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    for name, content in SANDBOX_FILES.items():
        (folder / name).write_text(content, encoding="utf-8")
    digits = sorted((ROOT / "examples" / "demo_inputs" / "digits").glob("*.png"))
    shutil.copy(digits[1], folder / "photo.png")
    (folder / "scans").mkdir()
    for p in digits[:2]:
        shutil.copy(p, folder / "scans" / p.name)
    yield folder


@contextlib.contextmanager
def cwd(folder: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


class Runner:
    """Runs runnable blocks once each, in the sandbox, and checks not-run ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[Any] = set()
        self.namespaces: dict[str, dict[str, Any]] = {}

    def block(self, b: Block) -> None:
        if b.lang == "json":
            json.loads(b.body)
        elif b.lang in SHELLS:
            for argv in commands(b.body):
                self.check_command(argv, b) if b.not_run is not None else self.run_command(argv, b)
        elif b.lang == "python":
            self.check_python(b) if b.not_run is not None else self.run_python(b)

    def run_command(self, argv: list[str], b: Block) -> None:
        if argv[0] != "explain":
            raise AssertionError(f"{b.where}: `{shlex.join(argv)}` cannot run in the docs test; mark the block "
                                 "<!-- not run: why --> (it is then checked another way)")
        key = tuple(argv)
        if key in self.seen:
            return
        self.seen.add(key)
        from explain.cli.main import main

        with cwd(self.folder):
            args = _parse(argv, b)
            if args.command == "run" and not args.resume:
                shutil.rmtree(Path(args.out), ignore_errors=True)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv[1:])
        assert code == 0, f"{b.where}: `{shlex.join(argv)}` exited {code}:\n{err.getvalue()[-2000:]}"

    def check_command(self, argv: list[str], b: Block) -> None:
        program = argv[0]
        if program == "explain":
            _check_explain(argv, b)
        elif program == "make":
            targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), re.M))
            for t in (a for a in argv[1:] if "=" not in a and not a.startswith("-")):
                assert t in targets, f"{b.where}: `make {t}`: the Makefile has no target {t!r}"
        elif program in ("python", "python3"):
            files = [a for a in argv[1:] if a.endswith(".py")]
            for f in files:
                assert (ROOT / f).is_file(), f"{b.where}: `{shlex.join(argv)}`: no file {f}"
        elif program == "pip":
            names = [a for a in argv[2:] if not a.startswith("-")]
            assert argv[1] == "install" and names, f"{b.where}: `{shlex.join(argv)}`"
            dist = _distribution()
            for n in names:
                base = re.split(r"[\[<>=]", n)[0]
                assert base in (dist, "torch") or n.startswith((".", "/")), (
                    f"{b.where}: `pip install {n}` names neither this project ({dist}) nor torch")
                for extra in re.findall(r"\[([\w,-]+)\]", n):
                    assert set(extra.split(",")) <= _extras(), f"{b.where}: no extra {extra!r} in pyproject.toml"
        else:
            assert program in OTHER_PROGRAMS, (
                f"{b.where}: `{program}` is not a program the docs test knows how to check: run it, or add a check")

    def run_python(self, b: Block) -> None:
        if b.body in self.seen:
            return
        self.seen.add(b.body)
        ns = self.namespaces.setdefault(b.page, {"__name__": "__docs__"})
        code = compile(b.body, b.where, "exec")
        with cwd(self.folder), contextlib.redirect_stdout(io.StringIO()):
            exec(code, ns)  # the docs' own snippet, as a reader would paste it

    def check_python(self, b: Block) -> None:
        tree = ast.parse(b.body, b.where)
        import explain
        from explain.methods import registry

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            dotted = _dotted(node.func)
            if not dotted or dotted[0] != "explain":
                continue
            target: Any = explain
            for i, part in enumerate(dotted[1:], 1):
                if not hasattr(target, part):
                    try:
                        target = importlib.import_module(".".join(dotted[: i + 1]))
                        continue
                    except ImportError:
                        raise AssertionError(f"{b.where}: {'.'.join(dotted)}: explain has no {'.'.join(dotted[: i + 1])}")
                target = getattr(target, part)
            params = inspect.signature(target).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            # explain.explain's **settings are per-method settings: each extra keyword names a method
            extra_ok = set(registry.REGISTRY) if target is explain.explain else None
            for kw in node.keywords:
                if kw.arg is None or kw.arg in params or (takes_any and (extra_ok is None or kw.arg in extra_ok)):
                    continue
                raise AssertionError(f"{b.where}: {'.'.join(dotted)}() takes no keyword {kw.arg!r}")


def _parse(argv: list[str], b: Block) -> Any:
    """Return the CLI's parse of an `explain ...` line, failing the test on a flag it refuses."""
    from explain.cli.main import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser(argv[1:]).parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(f"{b.where}: `{shlex.join(argv)}`: {err.getvalue().strip().splitlines()[-1]}") from None


def _check_explain(argv: list[str], b: Block) -> None:
    """Check a command that is not run: the parser takes it, its methods and settings exist."""
    from explain.errors import MethodError
    from explain.methods import registry

    args = _parse(argv, b)
    names = [n for n in (getattr(args, "methods", None) or "").split(",") if n and n != "all"]
    for n in names:
        try:
            registry.get(n)
        except MethodError as e:
            raise AssertionError(f"{b.where}: {e}") from None
    for spec in getattr(args, "set", None) or []:
        key, _, value = spec.partition("=")
        method, _, option = key.partition(".")
        try:
            registry.get(method).settings({option: value})
        except MethodError as e:
            raise AssertionError(f"{b.where}: --set {spec}: {e}") from None


def _dotted(node: ast.AST) -> list[str]:
    """Return ['explain', 'metrics', 'evaluate'] for the expression explain.metrics.evaluate."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else []


def _distribution() -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"])


def _extras() -> set[str]:
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


# --- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner(sandbox: Path) -> Runner:
    return Runner(sandbox)


@pytest.mark.slow  # the pages together run about 30 commands and snippets: 30-50 s on 2 cores
@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_snippet_of_the_page_runs(page: Path, runner: Runner) -> None:
    """Each block of the page runs (or, marked not run, passes its checks)."""
    for b in blocks(page):
        runner.block(b)


def test_blocks_are_found_with_their_markers(tmp_path: Path) -> None:
    """The extractor sees fences (indented ones too), languages and the marker right above a fence."""
    page = tmp_path / "p.md"
    page.write_text('text\n\n<!-- not run: hub id -->\n```bash\nexplain run a \\\n  --text "x y" # c\n```\n\n'
                    "- item\n\n  ```python\n  import explain\n  ```\n")
    found = blocks(page)
    assert [(b.lang, b.not_run) for b in found] == [("bash", "hub id"), ("python", None)]
    assert commands(found[0].body) == [["explain", "run", "a", "--text", "x y"]]
    assert found[1].body == "import explain"


@pytest.mark.parametrize("line, why", [
    ("explain run m --methods ig --no-such-flag", "unrecognized arguments"),
    ("explain run m --granularity letters", "invalid choice"),
    ("explain run m --methods ig,shapley", "unknown method"),
    ("explain run m --set ig.n_stepz=3", "unknown setting"),
    ("explain run m --set ig.n_steps=zero", "n_steps"),
    ("make no-such-target", "no target"),
    ("python examples/no_such_script.py", "no file"),
    ("pip install explain", "names neither"),
    ("curl https://example.org", "not a program"),
])
def test_a_not_run_block_with_a_wrong_command_fails(line: str, why: str, runner: Runner) -> None:
    """The checks that stand in for running a block catch a wrong flag, method, setting, target or file."""
    with pytest.raises(AssertionError, match=why):
        runner.block(Block("t.md", 1, "bash", line, "reason"))


def test_a_not_run_python_block_with_a_wrong_call_fails(runner: Runner) -> None:
    """A Python block that is not run still fails on a function explain lacks or a keyword it refuses."""
    with pytest.raises(AssertionError, match="no explain.lode"):
        runner.block(Block("t.md", 1, "python", 'm = explain.lode("x")', "reason"))
    with pytest.raises(AssertionError, match="no keyword 'method'"):
        runner.block(Block("t.md", 1, "python", 'explain.explain(m, ["x"], method="ig")', "reason"))
    runner.block(Block("t.md", 1, "python", 'explain.explain(m, ["x"], methods="ig", ig={"n_steps": 4})', "reason"))


def test_a_runnable_command_that_fails_fails_the_test(runner: Runner) -> None:
    """A documented command that exits non-zero (here: a checkpoint that is not there) fails the page."""
    with pytest.raises(AssertionError, match="exited 2"):
        runner.block(Block("t.md", 1, "bash", "explain inspect examples/models/no-such-model", None))
    with pytest.raises(AssertionError, match="cannot run in the docs test"):
        runner.block(Block("t.md", 1, "bash", "make demo", None))
