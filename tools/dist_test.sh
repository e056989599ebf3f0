#!/usr/bin/env bash
# Multi-GPU / multi-node evaluation through torchrun and mmengine's 'pytorch' launcher.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
#   CPU only:     the same (gloo backend; docs/reliability.md, section 10)
# exec: torchrun replaces this shell, so signals sent to its pid reach torchrun
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
