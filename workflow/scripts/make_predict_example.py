"""Write the example prediction job's inputs (resources/predict_example/) from the demo cohort.

    python workflow/scripts/make_predict_example.py --demo resources/demo --out resources/predict_example

The same demo and seed give the same files; see resources/predict_example/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oncoshot.errors import OncoShotError  # noqa: E402
from oncoshot.predict_example import make_example  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="resources/demo", help="demo folder (default resources/demo)")
    parser.add_argument("--out", required=True, help="output folder, e.g. resources/predict_example")
    parser.add_argument("--seed", type=int, default=20211, help="random seed (default 20211)")
    args = parser.parse_args(argv)
    try:
        summary = make_example(args.demo, args.out, seed=args.seed)
    except OncoShotError as exc:
        print(f"make_predict_example: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
