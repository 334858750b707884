#!/usr/bin/env bash
# The documented CPU quick path, end to end, in a scratch directory (default /tmp/detox-loop):
# import ParaDetox, evaluate the bundled base model, SFT on 800 pairs, evaluate the new version,
# and print both versions' metrics as JSON. About 30 minutes on 2 CPU cores.
# Usage: bench/quick_loop.sh [PARADETOX_TSV] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/paradetox.tsv}
work=${2:-/tmp/detox-loop}
[ -f "$data" ] || { echo "ParaDetox not found at $data; pass its path as the first argument." >&2; exit 2; }
bash scripts/setup
. .venv/bin/activate
mkdir -p "$work"
export DATABASE_URL=sqlite:///$work/db.sqlite3 MODEL_STORE=$work/models EVAL_AUTO=0
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TORCH_NUM_THREADS=${TORCH_NUM_THREADS:-$(nproc)}
python manage.py migrate --noinput -v 0
python manage.py bootstrap --prompts "$data" --format paradetox
time python manage.py evaluate active
time python manage.py train sft --subset-size 800 --batch-size 8 --epochs 1
python manage.py evaluate "$(python manage.py shell -v 0 -c 'from training.models import ModelVersion; print(ModelVersion.objects.latest("created_at").name)')"
python manage.py shell -v 0 -c '
import json
from evaluation.services import latest_metrics
from training.models import ModelVersion
print(json.dumps({v.name: latest_metrics(v) for v in ModelVersion.objects.order_by("created_at")}, indent=1, default=str))'
