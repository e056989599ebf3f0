#!/usr/bin/env bash
# Multi-GPU / multi-node training through torchrun and mmengine's 'pytorch' launcher.
#   single node:  bash tools/dist_train.sh CONFIG GPUS [train.py args]
#   multi node:   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh CONFIG 8
#   CPU only:     OMP_NUM_THREADS=1 bash tools/dist_train.sh CONFIG 2   (gloo; docs/reliability.md, section 10)
# exec: torchrun replaces this shell, so signals sent to its pid reach torchrun
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
