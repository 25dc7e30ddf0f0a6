"""Validates a Portcullis OCSF report (a JSON array of findings) against the OCSF Detection
Finding model Prowler writes its own with (py-ocsf-models). Exit status 1 on the first finding
that does not validate, with pydantic's reasons."""

import json
import sys

from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def main() -> int:
    findings = json.load(open(sys.argv[1], encoding="utf-8"))
    if not isinstance(findings, list) or not findings:
        print("not a non-empty array of findings", file=sys.stderr)
        return 1
    for i, finding in enumerate(findings):
        try:
            DetectionFinding(**finding)
        except Exception as e:  # pydantic's ValidationError says what and where
            print(f"finding {i}: {e}", file=sys.stderr)
            return 1
    print(f"{len(findings)} OCSF detection findings valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
