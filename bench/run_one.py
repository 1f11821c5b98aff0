"""Run one contender once, in this (fresh) process, and write its outcome as JSON.

    python -m bench.run_one CONTENDER --file products.csv --kind clean|messy --work DIR --out result.json
        [--profile PATH]

``python -m bench`` starts one of these per contender and repetition, so each
peak RSS belongs to one run of one contender.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from bench.contenders import STEPS
from bench.generate import FILES
from bench.measure import Skipped
from bench.ours import bulkimport_stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_one", description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=sorted(STEPS))
    parser.add_argument("--file", type=Path, required=True, help="the products CSV")
    parser.add_argument("--kind", choices=sorted(FILES), default="clean", help="how the file is written")
    parser.add_argument("--work", type=Path, required=True, help="folder for this run's outputs and lakes")
    parser.add_argument("--out", type=Path, required=True, help="where to write the outcome (JSON)")
    parser.add_argument("--profile", type=Path, help="bulkimport_stage only: write a pyinstrument profile here")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    kind = FILES[args.kind]
    try:
        if args.profile:
            if args.contender != "bulkimport_stage":
                parser.error("--profile is for bulkimport_stage")
            outcome = bulkimport_stage(args.file.resolve(), args.work.resolve(), kind, profile=args.profile.resolve())
        else:
            outcome = STEPS[args.contender](args.file.resolve(), args.work.resolve(), kind)
        result = {"status": "ok", **asdict(outcome)}
    except Skipped as exc:
        result = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the benchmark reports the failure and goes on
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:2000]}
    args.out.write_text(json.dumps(result))
    return 0 if result["status"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
