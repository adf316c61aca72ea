#!/usr/bin/env bash
# Runs full experiments one after another, each under a time limit, logging its wall time.
#   bash experiments/run_all.sh DATA_DIR LOG_DIR NAME:SECONDS [NAME:SECONDS ...]
# e.g. bash experiments/run_all.sh ../shared/data /tmp/logs mnist_rbm:300 fashion_resnet:400
set -u
data=$1 logs=$2
shift 2
mkdir -p "$logs"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)"
for item in "$@"; do
    name=${item%%:*} limit=${item##*:}
    start=$(date +%s)
    timeout "$limit" python3 "$(dirname "$0")/$name.py" --data-dir "$data" >"$logs/$name.log" 2>&1
    echo "== $name: exit $? after $(($(date +%s) - start)) s (log: $logs/$name.log)"
    tail -n 3 "$logs/$name.log"
done
