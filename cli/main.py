"""The `explain` command: a thin layer over the Python API (parse, call, print, write, exit code)."""

from __future__ import annotations

import argparse
import atexit
import errno
import os
import sys
import threading
import traceback
from typing import NoReturn, Sequence

EXIT_OK, EXIT_SOME_FAILED, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3

RUN_EXAMPLES = """examples:
  explain run ./my-bert --text "a great film" --text "dull and long" --methods ig,shap
  explain run ./my-bert --input reviews.csv --column review --methods all --out out/
  explain run ./my-gpt2 --prompt "The capital of France is" --max-new-tokens 5
  explain run ./my-cnn --image photo.png --image scans/ --methods ig,gradcam --target cat
  explain run ./my-bert --text "fine" --set ig.n_steps=100 --set shap.max_evals=1000
  explain run ./my-bert --input reviews.parquet --engine ray --workers 4 --out out/   # sharded results
  explain run ./my-bert --input s3://bucket/val.jsonl --engine ray --address auto --out s3://bucket/out
"""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command.

    The method names in `run --help` come from the registry, which imports torch; `argv` (the
    command line about to be parsed) lets other commands and `explain --help` skip that.
    """
    known = _method_names() if argv is None or _command(argv) == "run" else "see 'explain methods'"
    parser = argparse.ArgumentParser(
        prog="explain",
        description="Explain a PyTorch checkpoint (BERT, GPT or CNN): attention, IG, SHAP, LIME, Grad-CAM...",
        epilog="run 'explain COMMAND --help' for a command's options and examples",
    )
    parser.add_argument("--version", action="version", version=f"explain {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="explain a checkpoint on inputs; writes results.json and report.html",
        description="Explain a checkpoint on inputs and write OUT/results.json and OUT/report.html.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("checkpoint", help="a Hugging Face model folder, or a plain CNN folder / .safetensors file")
    run.add_argument("inputs", nargs="*", help="texts, prompts, image paths or input files (.txt/.jsonl/.csv)")
    src = run.add_argument_group("inputs")
    src.add_argument("--text", action="append", default=[], help="a text to explain (repeatable)")
    src.add_argument("--prompt", action="append", default=[], help="a prompt for a causal LM (repeatable)")
    src.add_argument("--input", action="append", default=[], metavar="FILE", help=".txt (one per line), .jsonl, .csv or .parquet")
    src.add_argument("--column", help="the .csv column or .jsonl field holding the text (default: text)")
    src.add_argument("--text-pair", action="append", default=[], metavar="TEXT",
                     help="sentence pairs: the second text of the --text at the same place (repeatable, one per --text)")
    src.add_argument("--pair-column", metavar="NAME",
                     help="sentence pairs: the .csv/.parquet column or .jsonl field holding the second text (.jsonl: text_pair is read by default)")
    src.add_argument("--image", action="append", default=[], metavar="PATH", help="an image file or a folder of them (repeatable)")
    src.add_argument("--continuation", help="causal LM: explain this continuation instead of generating one")
    src.add_argument("--max-new-tokens", type=int, default=8, help="causal LM: tokens to generate greedily (default 8)")
    how = run.add_argument_group("methods and targets")
    how.add_argument(
        "--methods",
        default=None,
        help=f"comma list, or 'all' (default: ig); known: {known}",
    )
    how.add_argument(
        "--target",
        action="append",
        default=[],
        help="a label name, or '#N' for the class at index N (a bare number is a label when one is spelt so, else an index); "
        "'all' for every class; repeatable; default: the prediction. Causal LMs: a token's text, 'step:N', steps, sum or all",
    )
    how.add_argument("--target-word", action="append", type=int, default=[], metavar="N",
                     help="token classifiers (NER): explain word N's label (0-based, repeatable); default: every word not predicted 'O'")
    how.add_argument("--top-classes", type=int, metavar="K", help="explain each input's K most probable classes (classifiers)")
    how.add_argument(
        "--baseline",
        metavar="NAME",
        help="what removing a feature means for every method of the run (text: mask, pad, drop, unk; images: blur, black, "
        "mean, noise); a method's own --set METHOD.baseline=... wins",
    )
    how.add_argument("--granularity", choices=("word", "token"), default="word", help="attribute whole words (default) or raw tokens")
    how.add_argument("--set", action="append", default=[], metavar="METHOD.OPTION=VALUE", help="a method setting (repeatable)")
    how.add_argument("--ig-steps", type=int, help="shortcut for --set ig.n_steps=N")
    how.add_argument("--shap-max-evals", type=int, help="shortcut for --set shap.max_evals=N")
    how.add_argument("--lime-samples", type=int, help="shortcut for --set lime.num_samples=N")
    how.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same results")
    how.add_argument("--max-length", type=int, help="truncate texts to N tokens (default: the model's maximum)")
    how.add_argument("--long-inputs", choices=("truncate", "fail"), default="truncate", help="texts over the limit: truncate with a warning (default) or fail that input")
    dev = run.add_argument_group("device and loading")
    dev.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    dev.add_argument("--batch-size", type=int, help="rows per model call (default: automatic)")
    dev.add_argument("--batch-inputs", default="auto", metavar="K",
                     help="explain K inputs side by side so their SHAP, LIME and ablation rows share model calls "
                          "(same scores and rows; default auto: 1, one input at a time, as batching gained little on CPU)")
    dev.add_argument("--autocast", choices=("bf16", "fp16"), help="GPU only: run forwards in reduced precision")
    dev.add_argument("--max-memory", metavar="SIZE", help="cap on one model call's activation memory, e.g. 2GB: gradient methods chunk their rows to fit")
    dev.add_argument("--threads", type=int, metavar="N", help="CPU threads torch may use (default: torch's own choice; with --engine ray: 1 per worker)")
    dev.add_argument("--device-map", choices=("auto", "balanced", "balanced_low_0", "sequential", "cpu"),
                     help="Hugging Face models: spread the model over this machine's GPUs (accelerate); --max-memory then caps each GPU")
    dev.add_argument("--allow-pickle", action="store_true", help="allow pickled weights (they can run code)")
    dev.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code")
    dev.add_argument("--allow-missing-weights", action="store_true", help="accept weights that leave parameters random")
    eng = run.add_argument_group("engine (dataset-scale runs)")
    eng.add_argument("--engine", choices=("in-process", "ray"), default="in-process",
                     help="in-process (default) or ray: Ray Data reads the inputs, a pool of workers explains them, "
                     "results go to sharded files under --out (a folder or any URI pyarrow opens, e.g. s3://)")
    eng.add_argument("--address", help="ray: join this running cluster (auto, HOST:PORT or ray://HOST:PORT; default: start a local one)")
    eng.add_argument("--workers", type=int, metavar="N", help="ray: workers, each loading the model once (default: one per GPU, else one per CPU)")
    eng.add_argument("--gpus-per-worker", type=float, metavar="G", help="ray: GPUs per worker (default 1 when the cluster has GPUs, else 0)")
    eng.add_argument("--shard-size", type=int, default=64, metavar="N", help="ray: inputs per batch and per shard file (default 64)")
    out = run.add_argument_group("output")
    out.add_argument("--out", default="explain-out", metavar="DIR", help="output folder (default explain-out)")
    out.add_argument("--force", action="store_true", help="overwrite an existing results.json (or sharded results) in DIR")
    out.add_argument("--resume", action="store_true", help="continue an interrupted run in DIR (same command); ray: skips the inputs already in shards")
    out.add_argument("--no-report", action="store_true", help="write results.json only")
    out.add_argument("--assets", choices=("inline", "shared"), default="inline", help="inline: one self-contained file (default); shared: plotly.js written once beside the report(s)")
    out.add_argument("--max-inputs", type=int, default=100, metavar="N", help="report: full sections for at most N inputs, a sample of bigger runs (default 100; 0: all)")
    out.add_argument("--metrics", nargs="?", const="faithfulness,agreement", default=None, metavar="LIST",
                     help="also compute trust metrics: faithfulness, agreement, sanity (default: faithfulness,agreement; "
                     "sanity re-runs every method on randomised models)")
    out.add_argument("--rationale", metavar="FILE", help='with --metrics: JSON of true rationales, {"0": ["word", ...]} or {"0": "mask.png"}')
    out.add_argument("--open", action="store_true", help="open the report in a browser when done")
    _add_verbosity(run)

    sub.add_parser("methods", help="list the methods, the families they serve and their settings")

    ins = sub.add_parser("inspect", help="show what a checkpoint is: family, labels, layers, parameters")
    ins.add_argument("checkpoint")
    ins.add_argument("--device", default="auto")
    ins.add_argument("--allow-pickle", action="store_true")
    ins.add_argument("--trust-remote-code", action="store_true")
    _add_verbosity(ins)

    rep = sub.add_parser("report", help="re-render report.html from a results.json or a sharded results folder")
    rep.add_argument("results", help="a results.json written by 'explain run', or the --out folder of an --engine ray run")
    rep.add_argument("--out", help="the HTML file to write (default: report.html beside the results)")
    rep.add_argument("--open", action="store_true")
    rep.add_argument("--assets", choices=("inline", "shared"), default="inline", help="inline: one self-contained file (default); shared: plotly.js written once beside the report(s)")
    rep.add_argument("--max-inputs", type=int, default=100, metavar="N", help="full sections for at most N inputs, a sample of bigger runs (default 100; 0: all)")
    _add_verbosity(rep)

    ev = sub.add_parser(
        "evaluate",
        help="compute faithfulness, agreement and sanity metrics for a saved run",
        description="Compute trust metrics for a saved run with the checkpoint it was made with; "
        "writes OUT/results.json and OUT/report.html (the saved run is left as it is).",
        epilog="example:\n  explain evaluate out/results.json --checkpoint ./my-bert --out out/evaluated",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("results", help="a results.json written by 'explain run'")
    ev.add_argument("--checkpoint", required=True, help="the checkpoint the results were made with")
    ev.add_argument("--metrics", default="faithfulness,agreement,sanity", help="comma list (default: all)")
    ev.add_argument("--rationale", metavar="FILE", help='JSON of true rationales, {"0": ["word", ...]} or {"0": "mask.png"}')
    ev.add_argument("--out", help="output folder (default: 'evaluated' beside the results)")
    ev.add_argument("--force", action="store_true", help="overwrite an existing OUT/results.json")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--seed", type=int, default=0)
    _add_verbosity(ev)

    from . import pack  # its parser only: the command's work imports what it needs when it runs

    pack.add_parser(sub)

    demo = sub.add_parser("demo", help="explain the bundled BERT, GPT and CNN models and write their reports")
    demo.add_argument("--out", default="explain-demo", metavar="DIR", help="output folder (default explain-demo)")
    demo.add_argument("--models", help="folder of the bundled models (default: examples/models of this checkout)")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--assets", choices=("inline", "shared"), default="inline", help="inline: one self-contained file (default); shared: plotly.js written once beside the report(s)")
    _add_verbosity(demo)
    return parser


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.add_argument("--verbose", "-v", action="store_true", help="print tracebacks with errors")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # checkpoints are local folders: never reach a hub
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "verbose", False):  # transformers' advice (attention implementation, masks) is not the user's to act on
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    from explain.errors import ExplainError

    try:
        from . import commands

        return int(getattr(commands, args.command)(args))
    except ExplainError as e:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"explain: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("explain: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as e:
        if _stdout_closed():  # `explain methods | head -1`: the reader has what it wanted
            return EXIT_OK
        return _internal(args, e)  # a pipe of our own (a worker, a socket) broke: a bug
    except OSError as e:
        if e.errno in _DISK_FULL:  # the results, the report or the output had nowhere to go
            print(f"explain: error: cannot write: {e}", file=sys.stderr)
            _said.add("disk full")  # leave() need not say it again when stdout's flush fails the same way
            return EXIT_USER_ERROR
        return _internal(args, e)
    except Exception as e:
        return _internal(args, e)


# A full disk or quota: the user can act on it (free space, write elsewhere), so not a bug.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_said: set[str] = set()  # errors already printed as their one line


def _internal(args: argparse.Namespace, e: BaseException) -> int:
    """Print a bug's one line (its traceback with --verbose) and return EXIT_INTERNAL."""
    if getattr(args, "verbose", False):
        traceback.print_exception(e)
    print(f"explain: internal error: {type(e).__name__}: {e} (rerun with --verbose for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def _stdout_closed() -> bool:
    """Return True when stdout is a pipe whose reader has gone (`explain ... | head`).

    A BrokenPipeError from anything else (a worker's pipe, a socket) is not a normal end; poll
    tells the two apart: the write end of a pipe with no reader reports POLLERR.
    """
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll, or stdout is not a file
        return False


def _version() -> str:
    from explain.version import __version__

    return __version__


def _command(argv: Sequence[str]) -> str | None:
    """Return the sub-command an argument list names (its first word not starting with '-')."""
    return next((a for a in argv if not a.startswith("-")), None)


def _method_names() -> str:
    from explain import methods as registry

    return ", ".join(registry.REGISTRY)


def entry() -> NoReturn:
    """The console script: run `main`, then leave without the interpreter's slow teardown."""
    try:
        code = main()
    except SystemExit as e:  # argparse's --help, --version and usage errors: their output is flushed below too
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else EXIT_USER_ERROR
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    leave(code)


def leave(code: int) -> NoReturn:
    """Finish what a normal exit would, then end the process at once with `code`.

    Tearing down an interpreter that has loaded torch and transformers takes about 1 s on a
    2-core machine (module and object finalisation), on every command. Nothing the user keeps
    is left to that teardown: files are written and closed by then. So this does the parts of
    a normal exit that matter - joins non-daemon threads, runs atexit handlers (logging flush,
    Ray shutdown, temporary folders), flushes stdout and stderr - and calls os._exit.
    """
    shutdown = getattr(threading, "_shutdown", None)  # joins non-daemon threads, as exit does
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # a closed pipe (explain ... | head): a normal end, nothing left to say
            pass
        except OSError as e:  # output lost (a full disk, /dev/full): never exit 0 on that
            code = code or EXIT_USER_ERROR
            if stream is sys.stdout and not (e.errno in _DISK_FULL and "disk full" in _said):
                _say(f"explain: error: the output could not be written: {e}")
        except ValueError:  # a stream closed by the command itself
            pass
    os._exit(code)


def _say(line: str) -> None:
    """Write one line to stderr, unbuffered (stdout may be what failed)."""
    try:
        os.write(2, (line + "\n").encode(errors="replace"))
    except OSError:
        pass


if __name__ == "__main__":
    entry()
