"""Portcullis's Isolation Forest against scikit-learn's, in one run, on the Wisconsin breast
cancer data that scikit-learn ships (malignant = anomaly).

Both grow forests with the paper's defaults (100 trees, subsamples of 256) on the same rows for
many seeds, score the same rows, and the mean ROC AUCs are compared. One forest's AUC here varies
by about 0.026 from seed to seed, so the default of 100 seeds puts the noise in the difference of
the means near 0.004, well inside a tolerance of 0.01. Exits 1 if they differ by
more than the tolerance. Run it through scripts/compare-isolation-forest.
"""

import argparse
import csv
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portcullis", required=True, help="the portcullis binary")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args()

    data = load_breast_cancer()
    features, labels = data.data, 1 - data.target  # target 0 is malignant

    reference, reference_ms = [], []
    for seed in range(args.seeds):
        started = time.perf_counter()
        forest = IsolationForest(random_state=seed).fit(features)
        reference_ms.append((time.perf_counter() - started) * 1e3)
        reference.append(roc_auc_score(labels, -forest.score_samples(features)))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "breast_cancer.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow([*data.feature_names, "malignant"])
            for row, label in zip(features, labels):
                out.writerow([*(repr(float(v)) for v in row), int(label)])
        run = subprocess.run(
            [args.portcullis, "model", "eval", "--csv", str(path), "--label", "malignant",
             "--seed", "0", "--seeds", str(args.seeds)],
            capture_output=True, text=True, check=False,
        )
    if run.returncode != 0:
        print(run.stdout + run.stderr, file=sys.stderr)
        print(f"portcullis model eval failed with exit code {run.returncode}", file=sys.stderr)
        return 2
    ours = [float(m) for m in re.findall(r"^seed \d+  auc (\S+)", run.stdout, re.M)]
    ours_ms = [float(m) for m in re.findall(r"train_ms (\S+)", run.stdout)]
    if len(ours) != args.seeds:
        print(run.stdout, file=sys.stderr)
        print(f"expected {args.seeds} seeds from portcullis, read {len(ours)}", file=sys.stderr)
        return 2

    print(f"breast cancer (scikit-learn {sklearn.__version__}): {len(labels)} rows, "
          f"{features.shape[1]} features, {int(labels.sum())} malignant; "
          f"{args.seeds} seeds, 100 trees, subsample 256")
    for name, aucs, ms in (("scikit-learn", reference, reference_ms), ("portcullis", ours, ours_ms)):
        print(f"{name:<13} auc {statistics.mean(aucs):.4f}  sd {statistics.stdev(aucs) if len(aucs) > 1 else 0:.4f}"
              f"  min {min(aucs):.4f}  max {max(aucs):.4f}  train_ms {statistics.median(ms):.2f}")
    difference = statistics.mean(ours) - statistics.mean(reference)
    within = abs(difference) <= args.tolerance
    print(f"difference {difference:+.4f} (tolerance {args.tolerance}): {'within' if within else 'OUTSIDE'}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
