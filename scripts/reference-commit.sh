#!/usr/bin/env bash
# Commits what the reference sweep has completed: the records of the runs with a summary.json, the evaluation
# classifier, and the report rebuilt from those records, and refreshes the README's results table from
# reference/mnist/tables/main-ci95.md and its claims' verdicts from REPORT.md. Runs still training are left out; run
# it again as more complete.
# The report is built the way crates/cli/tests/reference.rs rebuilds it on a fresh clone: with the test binary, in a
# copy holding only what is committed (no run in progress, no checkpoint, no progress.gif), so that what this
# machine has beside the records cannot reach the committed pages.
#   scripts/reference-commit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p ssinfogan-cli
root=$PWD
completed=()
for summary in reference/mnist/runs/*/summary.json; do
    [ -e "$summary" ] && completed+=("$(dirname "$summary")")
done
# In place first: a run the sweep's binary completed without a record file the report reads now (its morphometry)
# gets it from the run's checkpoint, which only this machine has.
target/debug/ssinfogan report --experiment experiments/mnist.toml --results reference -q >/dev/null
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
mkdir -p "$copy/reference/mnist/runs"
cp -a reference/mnist/classifier "$copy/reference/mnist/"
# The real test digits' morphometry (measured by the in-place report above, from the data on this machine).
[ -e reference/mnist/real-morphometry.json ] && cp reference/mnist/real-morphometry.json "$copy/reference/mnist/"
# The same exclusions as .gitignore's reference block.
tar -C reference/mnist/runs -cf - --exclude=checkpoint --exclude=samples.safetensors --exclude=progress \
    --exclude=progress.gif --exclude=run.lock --exclude=train.log --exclude='*.tmp' --exclude='sweep-*.png' \
    --exclude='events.out.tfevents.*' \
    "${completed[@]##*/}" | tar -C "$copy/reference/mnist/runs" -xf -
(cd "$copy" && "$root/target/debug/ssinfogan" report --experiment "$root/experiments/mnist.toml" --results reference -q)
rm -rf reference/mnist/tables reference/mnist/figures
cp -a "$copy"/reference/mnist/{REPORT.md,index.html,tables,figures} reference/mnist/
# The report draws the continuous-code sweeps of one seed per configuration, into that run's samples/.
(cd "$copy" && find reference/mnist/runs -name 'sweep-*.png' -exec cp --parents {} "$root" \;)
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
text = head + begin + table + end + tail
# The claims' verdicts, as REPORT.md's table of them.
report = pathlib.Path("reference/mnist/REPORT.md").read_text()
claims = report.split("## The paper's claims\n\n", 1)[1].split("\n\n", 1)[0] + "\n"
begin, end = "<!-- claims -->\n", "<!-- /claims -->"
if begin not in text or end not in text:
    raise SystemExit("README.md has no <!-- claims --> … <!-- /claims --> block to refresh")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
readme.write_text(head + begin + claims + end + tail)
PY
git add README.md reference/README.md reference/mnist/REPORT.md reference/mnist/index.html reference/mnist/tables \
    reference/mnist/figures reference/mnist/classifier reference/mnist/real-morphometry.json "${completed[@]}"
names=$(for run in "${completed[@]}"; do basename "$run"; done | paste -sd, -)
git commit -q -m "reference/mnist: ${#completed[@]} of 18 runs completed at the paper's schedule (${names//,/, }), the report rebuilt from their records" || echo "nothing new to commit"
git log --oneline -1
