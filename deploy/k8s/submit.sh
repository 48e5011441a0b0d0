#!/bin/bash
# Starts the RI Indexed Job, waits until every index succeeded, then starts the merge job.
#
# usage: deploy/k8s/submit.sh [NAMESPACE] [TIMEOUT]   (default namespace: current; timeout 24h)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ns=(${1:+--namespace "$1"})
timeout="${2:-24h}"
kubectl "${ns[@]}" apply -f "$here/ri-experts.yaml"
# A job with a failed index never becomes complete: the wait times out and the merge does not
# start on partial results.
kubectl "${ns[@]}" wait --for=condition=complete job/ri-experts --timeout="$timeout"
kubectl "${ns[@]}" apply -f "$here/merge.yaml"
kubectl "${ns[@]}" wait --for=condition=complete job/ri-merge --timeout="$timeout"
echo "merge done: kubectl ${ns[*]} logs job/ri-merge"
