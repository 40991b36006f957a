"""Equal-time A/B of two training recipes on the real evaluation sets.

    python benchmarks/ab.py --minutes 78 --seeds 0 1 \
        --a "" --b "train.ema_decay=0.999" [--name ema] [--out metrics/ab/ema.json]
    python benchmarks/ab.py --minutes 25 --seeds 0 1 --reuse-a typeset --b "train.lr=1e-4" --name lr

Each arm is a DVC experiment in a temporary copy of the repository (``dvc exp run --temp``,
up to the ``evaluate`` stage) with ``train.max_minutes`` set to the same budget and
``train.anneal_by=time``, so both end annealed after the same wall time however fast their
steps are; the arm's own overrides (``-S`` values, space-separated) come on top, and each
seed is a separate run. Run it on an otherwise idle machine: a second CPU-heavy process slows
one arm and not the other. Prints, per real set, recall / precision / detection rate /
decode rate as the mean over seeds and half their range (a difference smaller than that
spread is not a result), and the steps each arm reached; writes the same to ``--out``.

``--reuse-a NAME`` takes arm A from the experiments ``ab-NAME-A-s<seed>`` of an earlier A/B
with the same budget and seeds instead of running it again (half the time of a new A/B). They
may sit on an older commit: reuse them only when nothing arm A runs has changed since, and
say so with the figures (the report names the experiments it reused).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

KEYS = ("recall@0.5", "precision@0.5", "detection_rate", "decode_rate")
DVC = str(Path(sys.executable).with_name("dvc"))


def budget(minutes: float, seed: int) -> dict[str, Any]:
    """The ``train`` settings every run of an A/B shares; max_steps out of reach: the time
    budget, not a step count, ends every run."""
    return {"max_minutes": minutes, "max_steps": 10_000_000, "anneal_by": "time", "seed": seed}


def run_arm(name: str, overrides: list[str], minutes: float, seed: int) -> str:
    exp = f"ab-{name}-s{seed}"
    settings = [*(f"train.{key}={value}" for key, value in budget(minutes, seed).items()), *overrides]
    # A rerun replaces the experiment of the same name. Not by `exp run -f`: that is `repro -f`
    # too, and would re-run synthesis and preprocessing in every arm that does not change them.
    listed = subprocess.run([DVC, "exp", "list", "--name-only"], check=True, capture_output=True, text=True)
    if exp in listed.stdout.split():
        subprocess.run([DVC, "exp", "remove", exp], check=True)
    cmd = [DVC, "exp", "run", "--temp", "-n", exp, *(a for s in settings for a in ("-S", s)), "evaluate"]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return exp


def find_experiment(shown: Any, name: str) -> dict[str, Any]:
    """The ``data`` of experiment ``name`` in ``dvc exp show --json``."""
    if isinstance(shown, dict):
        if shown.get("name") == name and "data" in shown:
            return shown["data"]
        children = shown.values()
    elif isinstance(shown, list):
        children = shown
    else:
        children = []
    for child in children:
        try:
            return find_experiment(child, name)
        except KeyError:
            continue
    raise KeyError(name)


def reused_run(shown: Any, exp: str, minutes: float, seed: int) -> dict[str, Any]:
    """Figures of an earlier arm ``exp``, which must have run with this budget and seed."""
    try:
        data = find_experiment(shown, exp)
    except KeyError:
        sys.exit(f"--reuse-a: no experiment named {exp} (see `dvc exp list --all-commits`)")
    train = data["params"]["params.yaml"]["data"]["train"]
    differing = {
        key: (train.get(key), value) for key, value in budget(minutes, seed).items() if train.get(key) != value
    }
    if differing:
        ran = ", ".join(f"train.{key}={was}" for key, (was, _) in differing.items())
        needed = ", ".join(f"train.{key}={value}" for key, (_, value) in differing.items())
        sys.exit(f"--reuse-a: {exp} ran with {ran}; this A/B needs {needed}")
    return figures(data)


def figures(data: dict[str, Any]) -> dict[str, Any]:
    metrics = data["metrics"]
    evaluate = metrics["metrics/evaluate.json"]["data"]
    train = metrics.get("metrics/train/metrics.json", {}).get("data", {})
    return {"sets": {s: {k: m[k] for k in KEYS if k in m} for s, m in evaluate.items()}, "step": train.get("step")}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and half-range over seeds of every figure."""
    out: dict[str, Any] = {"steps": [r["step"] for r in runs], "sets": {}}
    for name in runs[0]["sets"]:
        out["sets"][name] = {}
        for key in runs[0]["sets"][name]:
            values = [r["sets"][name][key] for r in runs if key in r["sets"].get(name, {})]
            out["sets"][name][key] = {"mean": statistics.fmean(values), "spread": (max(values) - min(values)) / 2}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training budget of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--a", default="", help="overrides of arm A (space-separated key=value)")
    parser.add_argument("--b", default="", help="overrides of arm B")
    parser.add_argument("--reuse-a", metavar="NAME", help="take arm A from the experiments of the earlier A/B NAME")
    parser.add_argument("--name", default="ab", help="experiment name prefix")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default metrics/ab/NAME.json)")
    args = parser.parse_args()
    arms = {"A": args.a.split(), "B": args.b.split()}
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    if args.reuse_a:
        shown = json.loads(
            subprocess.run([DVC, "exp", "show", "--json", "--all-commits"], check=True, capture_output=True).stdout
        )
        reused = [f"ab-{args.reuse_a}-A-s{seed}" for seed in args.seeds]
        runs["A"] = [reused_run(shown, exp, args.minutes, seed) for exp, seed in zip(reused, args.seeds, strict=True)]
        del arms["A"]
    for seed in args.seeds:  # interleaved, so a drift in machine speed hits both arms alike
        for arm, overrides in arms.items():
            exp = run_arm(f"{args.name}-{arm}", overrides, args.minutes, seed)
            shown = json.loads(subprocess.run([DVC, "exp", "show", "--json"], check=True, capture_output=True).stdout)
            runs[arm].append(figures(find_experiment(shown, exp)))
    report: dict[str, Any] = {
        "minutes": args.minutes,
        "seeds": args.seeds,
        "arms": {
            "A": {"overrides": args.a.split(), **({"reused": reused} if args.reuse_a else {}), **summarise(runs["A"])},
            "B": {"overrides": arms["B"], **summarise(runs["B"])},
        },
    }
    out = args.out or Path("metrics/ab") / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{args.minutes:g} min per run, seeds {args.seeds}; A: {args.a or 'defaults'}; B: {args.b or 'defaults'}")
    print(f"steps reached: A {report['arms']['A']['steps']}, B {report['arms']['B']['steps']}")
    print(f"{'set':<28} {'figure':<15} {'A':>15} {'B':>15}")
    for name, by_key in report["arms"]["A"]["sets"].items():
        for key, a in by_key.items():
            b = report["arms"]["B"]["sets"].get(name, {}).get(key)
            cell_b = f"{b['mean']:.3f} ± {b['spread']:.3f}" if b else "-"
            print(f"{name:<28} {key:<15} {a['mean']:.3f} ± {a['spread']:.3f} {cell_b:>15}")


if __name__ == "__main__":
    main()
