#!/usr/bin/env bash
# Every CPU benchmark, one after the other (they must not share the machine), into results/*.txt.
# Needs the benchmark and Optimum environments of bench/README.md (OPTIMUM_VENV, default ../.venv-optimum).
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
mkdir -p results
python=${PYTHON:-python}
for script in export_time int8_speed minilm_fidelity runtime_vs_optimum serve_load; do
    echo "== $script"
    "$python" "$script.py" | tee "results/$script.txt"
done
