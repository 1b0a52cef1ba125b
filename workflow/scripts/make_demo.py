"""Write the embedded demo cohort (simulated data in the real file formats).

    python workflow/scripts/make_demo.py --out resources/demo [--seed 20211]

The same seed gives byte-identical files; see resources/demo/truth/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oncoshot.demo import DEFAULT_SEED, generate  # noqa: E402
from oncoshot.errors import OncoShotError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder, e.g. resources/demo")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    try:
        summary = generate(args.out, seed=args.seed)
    except OncoShotError as exc:
        print(f"make_demo: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in summary.items() if k != "files"} | {
        "total_bytes": sum(summary["files"].values()),
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
