#!/bin/sh
# Adapts one expert with RI: the unit of work of a scale-out run.
#
# The expert is chosen by a task index, from the first of these that is set:
#   $RI_TASK_INDEX, $SLURM_ARRAY_TASK_ID (Slurm job array), $JOB_COMPLETION_INDEX
#   (Kubernetes Indexed Job)
# and the space-separated expert names in $RI_EXPERTS (index 0 is the first name).
# $RI_CONFIG is the run's configuration file (the same one the merge job uses).
#
# usage: RI_EXPERTS="cars dtd eurosat" RI_CONFIG=run.json RI_TASK_INDEX=1 deploy/run_expert.sh
set -eu

index="${RI_TASK_INDEX:-${SLURM_ARRAY_TASK_ID:-${JOB_COMPLETION_INDEX:-}}}"
if [ -z "$index" ]; then
  echo "run_expert.sh: no task index (set RI_TASK_INDEX, SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)" >&2
  exit 2
fi
: "${RI_EXPERTS:?run_expert.sh: set RI_EXPERTS to the expert names, space-separated}"
: "${RI_CONFIG:?run_expert.sh: set RI_CONFIG to the run configuration file}"

# shellcheck disable=SC2086 # word splitting of the name list is intended
set -- $RI_EXPERTS
count=$#
case "$index" in
  *[!0-9]*) echo "run_expert.sh: task index \"$index\" is not a number" >&2; exit 2 ;;
esac
if [ "$index" -ge "$count" ]; then
  echo "run_expert.sh: task index $index, but RI_EXPERTS names only $count experts" >&2
  exit 2
fi
shift "$index"
expert="$1"

cd "$(dirname "$0")/.."
echo "run_expert.sh: task $index of $count: expert $expert (config $RI_CONFIG)"
exec ./deno task ri --expert "$expert" --config "$RI_CONFIG"
