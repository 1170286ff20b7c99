#!/usr/bin/env bash
# The reference reproduction: `experiments/mnist.toml`'s sweep at the paper's schedule into reference/mnist/, the
# runs that answer the paper's claims first (InfoGAN, then 132 and 600 labels, on seeds 1-3; then 300, 1200, 6000).
# Completed runs are skipped, so each invocation continues where the last one stopped; extra arguments go to
# `cargo xtask reproduce` (e.g. `--runs 'ss-infogan-n300-*'` to take a part of what remains).
#   scripts/reference-sweep.sh [--results DIR] [--data-root DIR] [--runs PATTERNS] [--jobs N]
set -euo pipefail
cd "$(dirname "$0")/.."
order='infogan-n0-*,ss-infogan-n132-*,ss-infogan-n600-*,ss-infogan-n300-*,ss-infogan-n1200-*,ss-infogan-n6000-*'
args=("$@")
case " $* " in *" --runs "*) ;; *) args+=(--runs "$order") ;; esac
case " $* " in *" --results "*) ;; *) args+=(--results reference) ;; esac
exec cargo xtask reproduce mnist "${args[@]}"
