"""`python -m hostile [--quick] [--section NAME ...] [--out-dir DIR]`

Prepares a home of its own under $SAIL_HOME/hostile (the real data, 300 openclipart pairs, drawn
from the render cache of $SAIL_HOME when there is one; the tiny model), runs the sections, writes
`results.json` and the page, and prints the page. Defaults: `hostile/results.json` and
`docs/reliability.md`; `--quick` (fewer cases, no pipeline run: a few minutes) writes them under
$SAIL_HOME/hostile instead, so it never overwrites the committed page. Exits 1 when a row did not
hold.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

from hostile import publish, requests, training, validation
from hostile.report import render
from hostile.section import Context, Section

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {
    "requests": requests.run,
    "publish": publish.run,
    "training": training.run,
    "validation": validation.run,
}
LIMIT = 300  # openclipart pairs prepared


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hostile", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="fewer cases, no pipeline run")
    parser.add_argument("--section", choices=SECTIONS, action="append", help="default: all")
    parser.add_argument("--out-dir", type=Path, default=None, help="results and page here")
    return parser.parse_args(argv)


def prepare(work: Path) -> Context:
    """A fresh work folder: a home with the data prepared small, and the tiny model."""
    from model_code.data.prepare import prepare_all
    from model_code.factory import create_model, save_pretrained
    from model_code.paths import cache_dir

    cache = cache_dir()  # the caller's render and tower-feature caches, before SAIL_HOME moves
    shutil.rmtree(work, ignore_errors=True)
    home = work / "home"
    os.environ.update(SAIL_HOME=str(home), SAIL_CACHE_DIR=str(cache))
    for name in ("SAIL_DATA_DIR", "SAIL_FEATURE_STORE", "MLFLOW_TRACKING_URI"):
        os.environ.pop(name, None)
    prepare_all(limit=LIMIT)
    (home / "cache").symlink_to(cache, target_is_directory=True)
    model, processor = create_model("tiny")
    model_dir = save_pretrained(model.eval(), processor, work / "tiny-model")
    return Context(home=home, model_dir=model_dir, work=work / "sections")


def run_section(name: str, context: Context) -> list[Section]:
    """A section's tables; a section that raises is one table saying where."""
    began = time.perf_counter()
    try:
        return SECTIONS[name](context)
    except Exception:
        failed = Section(f"{name} (failed to run)", ["error"], held=False)
        failed.add(traceback.format_exc(limit=-3).strip().splitlines()[-1], ok=False)
        failed.note = "The section raised before it finished; its traceback is in the log."
        failed.seconds = round(time.perf_counter() - began, 1)
        traceback.print_exc()
        return [failed]


def main(argv: list[str] | None = None) -> int:
    from bench.machine import machine_info
    from model_code.paths import sail_home

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = sail_home() / "hostile"
    out_dir = args.out_dir or (work / "report" if args.quick else None)
    began = time.perf_counter()
    context = prepare(work)
    context.quick = args.quick
    sections = [s for name in args.section or SECTIONS for s in run_section(name, context)]
    results = {
        "machine": machine_info(threads=os.cpu_count() or 1),
        "quick": args.quick,
        "seconds": round(time.perf_counter() - began, 1),
        "sections": [section.to_dict() for section in sections],
    }
    json_path = (out_dir or ROOT / "hostile") / "results.json"
    page_path = (out_dir or ROOT / "docs") / ("reliability.md" if out_dir is None else "page.md")
    for path in (json_path, page_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    page = render(results)
    page_path.write_text(page)
    print(page)
    return 0 if all(section.held for section in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
