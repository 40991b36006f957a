"""Stage synthesize: render the built-in synthetic data set (params: synth)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from barseg.data.synth import generate
from barseg.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the seed-format images")
    args = parser.parse_args()
    params = load_section("synth")
    start = time.perf_counter()
    codes = generate(params, args.out)
    seconds = time.perf_counter() - start
    print(
        f"synthesize: {params.count} images, {codes} codes in {seconds:.1f} s ({params.count / seconds:.1f} images/s, {params.workers} workers)"
    )


if __name__ == "__main__":
    main()
