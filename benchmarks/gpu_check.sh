#!/usr/bin/env bash
# GPU readiness check (issue 14 item 3): the demo's GPU-tagged rules on the GPU, Siamese / evaluation
# / pretraining / saliency throughputs at full size, and the projected time of the full reproduction,
# in one table. Budgeted to finish in <= 8 minutes on a CUDA GPU. Run from anywhere:
#
#   bash benchmarks/gpu_check.sh                 # CUDA: writes results/benchmarks/gpu_check.{tsv,md}
#   bash benchmarks/gpu_check.sh --device cpu    # dry mode: same code paths, tiny sizes, < 1 min
#
# Extra arguments go to benchmarks/gpu_check.py (see its --help). The table is printed at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="results/benchmarks/gpu_check.tsv"
for arg in "$@"; do
  if [[ "$arg" == "cpu" ]]; then out="results/benchmarks/gpu_check_cpu.tsv"; fi
done
if [[ " $* " != *" --device "* ]] && ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device visible to torch; for the CPU dry mode pass --device cpu" >&2
  exit 2
fi
mkdir -p "$(dirname "$out")"
exec timeout --signal=INT 600 python3 benchmarks/gpu_check.py --out "$out" "$@"
