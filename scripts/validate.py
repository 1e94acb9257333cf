"""validate: check every JSON artifact of a bundle against its schema in schemas/."""
from __future__ import annotations

import os

import click

from scripts.cli import artifacts_option, stage_command


def transform(artifacts: str, sample: int = 0) -> dict:
    """Validate a bundle; return ``{checked, skipped, problems: [path: message]}``.

    ``sample`` > 0 checks only every n-th line of JSONL files (big histories)."""
    from scripts.core.schemas import errors, schema_exists, schema_for
    from scripts.shared_io import loads

    checked, skipped, problems = 0, [], []
    for dirpath, dirnames, filenames in os.walk(artifacts):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "cache")
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, artifacts)
            name = schema_for(rel)
            if name is None:
                continue
            if not schema_exists(name):
                skipped.append(f"{rel} (no {name} yet)")
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            docs = []
            try:
                if fn.endswith(".jsonl"):
                    lines = data.splitlines()
                    step = sample if sample > 0 else 1
                    docs = [(f"{rel}:{i + 1}", loads(lines[i])) for i in range(0, len(lines), step) if lines[i].strip()]
                else:
                    docs = [(rel, loads(data))]
            except Exception as exc:  # a parse error is a finding, not a crash
                problems.append(f"{rel}: not valid JSON ({exc})")
                continue
            for where, doc in docs:
                for msg in errors(doc, name, limit=3):
                    problems.append(f"{where}: {msg}")
            checked += 1
    return {"checked": checked, "skipped": skipped, "problems": problems}


@stage_command("validate")
@artifacts_option
@click.option("--sample", type=int, default=0, help="Check only every N-th line of JSONL artifacts.")
def cli(artifacts, sample):
    """Validate every JSON artifact of the bundle against its schema; exit 1 on any violation.

    Example:

    \b
        validate --artifacts artifacts/demo
    """
    result = transform(artifacts, sample)
    for line in result["problems"][:50]:
        click.echo(line, err=True)
    for line in result["skipped"]:
        click.echo(f"skipped: {line}", err=True)
    click.echo(f"validate: {result['checked']} artifacts checked, {len(result['problems'])} problems", err=True)
    if result["problems"]:
        raise SystemExit(1)


main = cli

if __name__ == "__main__":
    cli()
