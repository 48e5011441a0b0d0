#!/bin/bash
# Submits the RI job array (one task per expert) and the merge job that waits for all of it.
#
# usage: deploy/slurm/submit.sh CONFIG EXPERT [EXPERT...]
#   e.g. deploy/slurm/submit.sh runs/vitb32-8tasks.json cars dtd eurosat gtsrb mnist resisc45 sun397 svhn
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG EXPERT [EXPERT...]" >&2
  exit 2
fi
config="$1"
shift
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$repo/logs"
export RI_REPO="$repo" RI_CONFIG="$config" RI_EXPERTS="$*"
array=$(sbatch --parsable --array=0-$(($# - 1)) --export=ALL "$here/ri_experts.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"${array%%;*}" --export=ALL "$here/merge.sbatch")
echo "RI array job $array ($# experts), merge job $merge (runs after every expert succeeded)"
