#!/usr/bin/env bash
# Commits what the reference sweep has completed: the records of the runs with a summary.json, the evaluation
# classifier, and the report rebuilt from those records (with the binary the tests use, so that
# crates/cli/tests/reference.rs finds it identical), and refreshes the README's results table from
# reference/mnist/tables/main-ci95.md. Runs still training are left out; run it again as more complete.
#   scripts/reference-commit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p ssinfogan-cli
target/debug/ssinfogan report --experiment experiments/mnist.toml --results reference -q
python3 - <<'PY'
import re, pathlib
readme = pathlib.Path("README.md")
table = pathlib.Path("reference/mnist/tables/main-ci95.md").read_text()
text = readme.read_text()
begin, end = "<!-- main-ci95 -->\n", "<!-- /main-ci95 -->"
if begin not in text or end not in text:
    raise SystemExit("README.md has no <!-- main-ci95 --> … <!-- /main-ci95 --> block to refresh")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
readme.write_text(head + begin + table + end + tail)
PY
completed=()
for summary in reference/mnist/runs/*/summary.json; do
    [ -e "$summary" ] && completed+=("$(dirname "$summary")")
done
git add README.md reference/README.md reference/mnist/REPORT.md reference/mnist/index.html reference/mnist/tables \
    reference/mnist/figures reference/mnist/classifier "${completed[@]}"
names=$(for run in "${completed[@]}"; do basename "$run"; done | paste -sd, -)
git commit -q -m "reference/mnist: ${#completed[@]} of 18 runs completed at the paper's schedule (${names//,/, }), the report rebuilt from their records" || echo "nothing new to commit"
git log --oneline -1
