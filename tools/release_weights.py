"""Release a checkpoint as weights/<name> (fp16 weights-only, SHA-256 in weights/weights.json).

python tools/release_weights.py models/model.ckpt --name barseg-mbv3-v1.pt [--fp32] [--describe KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from barseg.model.release import write_release
from barseg.weights import weights_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--name", required=True, help="file name in weights/, e.g. barseg-mbv3-v1.pt")
    parser.add_argument("--fp32", action="store_true", help="keep float32 (when fp16 measurably loses accuracy)")
    parser.add_argument(
        "--describe", nargs="*", default=[], help="KEY=VALUE facts for weights.json (steps, hours, data)"
    )
    args = parser.parse_args()
    if bad := [item for item in args.describe if "=" not in item]:
        parser.error(f"--describe takes KEY=VALUE items, got {bad}")
    describe = dict(item.split("=", 1) for item in args.describe)
    path = write_release(args.checkpoint, weights_dir(), args.name, half=not args.fp32, describe=describe)
    print(f"{path} ({path.stat().st_size / 2**20:.1f} MB), listed in {path.parent / 'weights.json'}")


if __name__ == "__main__":
    main()
