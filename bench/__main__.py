"""`python -m bench [--suite serving|precision|compact|training|pipeline|feature_store|all]
[--smoke] [--model-uri URI] [--threads N] [--out-dir DIR]`

Runs the suites, writes `results.json` (machine + each suite's figures), the Markdown page and
its plot, and prints the page. Defaults: `bench/results.json`, `docs/benchmarks.md`,
`docs/benchmarks/serving.png`; with `--smoke` (tiny model, synthetic data, a few requests and
steps: about a minute) everything goes to `$SAIL_HOME/bench-smoke/` instead, so a smoke run never
overwrites the real page. Running one suite keeps the other suites' last figures in the file.
A suite that cannot run (no pipeline run, nothing published) is reported as skipped; one that
fails is reported as failed and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

from bench import SUITES
from bench.machine import cpu_model, load_average, machine_info, now, usable_cores
from bench.report import PLOT, plot_serving, render
from sail.tracking.runs import git_commit
from sail.tracking.server import tracking_service

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--smoke", action="store_true", help="tiny presets: about a minute")
    parser.add_argument("--model-uri", default=None, help="default models:/sail-embedding@champion")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    parser.add_argument("--out-dir", type=Path, default=None, help="results, page and plot here")
    return parser.parse_args(argv)


def outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(results.json, page) for the arguments; the plot goes to PLOT beside the page."""
    if args.out_dir is None and not args.smoke:
        return ROOT / "bench" / "results.json", ROOT / "docs" / "benchmarks.md"
    if args.out_dir is None:
        from model_code.paths import sail_home

        args.out_dir = sail_home() / "bench-smoke"
    return args.out_dir / "results.json", args.out_dir / "benchmarks.md"


def run_suite(name: str, args: argparse.Namespace, threads: int) -> dict:
    if name == "serving":
        from bench import serving

        return serving.run(args.model_uri, smoke=args.smoke, threads=threads)
    if name == "precision":
        from bench import precision

        return precision.run(args.model_uri, smoke=args.smoke, threads=threads)
    if name == "compact":
        from bench import compact

        return compact.run(args.model_uri, smoke=args.smoke, threads=threads)
    if name == "training":
        from bench import training

        return training.run(smoke=args.smoke, threads=threads)
    if name == "pipeline":
        from bench import pipeline

        return pipeline.run(smoke=args.smoke)
    from bench import feature_store

    return feature_store.run(smoke=args.smoke)


def measure(name: str, args: argparse.Namespace, threads: int) -> dict:
    """One suite's figures with its status, time, date and the load around it."""
    logger.info("suite %s", name)
    before, began = load_average(), time.perf_counter()
    try:
        figures = run_suite(name, args, threads)
    except Exception as error:  # reported, the other suites still run
        traceback.print_exc()
        figures = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    figures.setdefault("status", "ok")
    seconds = round(time.perf_counter() - began, 1)
    logger.info("suite %s: %s in %.0f s", name, figures["status"], seconds)
    load = {"before": before, "after": load_average()}
    where = {"cpu": cpu_model(), "git_commit": git_commit()}  # kept suites may be another host's
    return {"measured_at": now(), "seconds": seconds, "load_average": load, **where, **figures}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results_path, page_path = outputs(args)
    threads = args.threads or usable_cores()
    import torch

    torch.set_num_threads(threads)
    mode = "smoke" if args.smoke else "full"
    results = {"suites": {}}
    if results_path.is_file():
        previous = json.loads(results_path.read_text())
        if previous.get("mode") == mode:
            results = previous
    results["machine"], results["mode"] = machine_info(threads), mode
    chosen = SUITES if args.suite == "all" else (args.suite,)
    with nullcontext() if args.smoke else tracking_service():  # the registered models' artifacts
        for name in chosen:
            results["suites"][name] = measure(name, args, threads)
    suites = results["suites"]
    results["suites"] = {name: suites[name] for name in SUITES if name in suites}
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if "serving" in results["suites"]:
        plot_serving(results["suites"]["serving"], page_path.parent / PLOT)
    page = render(results)
    page_path.parent.mkdir(parents=True, exist_ok=True)
    page_path.write_text(page)
    print(page)
    print(f"wrote {results_path} and {page_path}", file=sys.stderr)
    failed = [name for name in chosen if results["suites"][name]["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
