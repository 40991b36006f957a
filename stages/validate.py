"""Stage validate: check every data source (params: data.sources, validate)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from barseg.data.validate import Report, sources_from_params, validate_sources
from barseg.params import load_section

SHOWN_PROBLEMS = 50


def summary(report: Report, strict: bool) -> str:
    lines = [str(p) for p in report.problems[:SHOWN_PROBLEMS]]
    if len(report.problems) > SHOWN_PROBLEMS:
        lines.append(f"... and {len(report.problems) - SHOWN_PROBLEMS} more")
    files = len(report.excluded)
    verdict = "failing (validate.strict: true)" if strict else "excluding them (validate.strict: false)"
    lines.append(f"validate: {len(report.problems)} problem(s) in {files} file(s); {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=Path, required=True, help="counts per problem kind, symbology, size")
    parser.add_argument("--problems", type=Path, required=True, help="every problem and the excluded files")
    args = parser.parse_args()
    strict = bool(load_section("validate").strict)
    try:
        sources = sources_from_params(load_section("data").sources)
    except ValueError as exc:  # a params.yaml mistake: name it, no traceback
        sys.exit(f"validate: {exc}")
    report = validate_sources(sources)
    for name, why in report.skipped.items():
        print(f"validate: source '{name}' skipped: {why}")
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(report.metrics(), indent=2) + "\n")
    args.problems.write_text(json.dumps(report.problem_list(), indent=2) + "\n")
    metrics = report.metrics()
    print(f"validate: {metrics['valid_images']} valid images, {metrics['instances']} barcodes")
    if report.problems:
        print(summary(report, strict), file=sys.stderr)
        if strict:
            sys.exit(1)


if __name__ == "__main__":
    main()
