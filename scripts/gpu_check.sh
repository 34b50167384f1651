#!/usr/bin/env bash
# End-to-end check of the CUDA paths on a machine with a GPU (CI has none): the test suite with CUDA
# visible, a short AMP fine-tune, a one-process torchrun (NCCL, SyncBatchNorm), val.py --half, detect.py.
# Uses ../shared (coco128 val2017, the official yolov5n.pt). Writes logs to ${OUT:-runs/gpu_check}.
#     scripts/gpu_check.sh            # with the project's environment active (or python3 holding its deps)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-runs/gpu_check}"; mkdir -p "$out"
work="$(mktemp -d)"
shared="$root/../shared"
python="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

step() {  # name, command...: runs it, keeps its log, prints its last lines and its exit status
    local name="$1"; shift
    local t0=$SECONDS
    "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "=== $name: exit $rc, $((SECONDS - t0)) s"; tail -n "${TAIL:-6}" "$out/$name.log"
}

# A dataset of coco128 val2017 for both splits (128 images, 898 boxes).
"$python" - "$shared" "$work/coco128val.yaml" <<'PY'
import sys, yaml
shared, target = sys.argv[1:]
names = yaml.safe_load(open(f"{shared}/data/coco128/coco128.yaml"))["names"]
yaml.safe_dump({"path": f"{shared}/data/coco128", "train": "images/val2017", "val": "images/val2017",
                "names": names}, open(target, "w"))
PY
data="$work/coco128val.yaml"; weights="$shared/weights/yolov5n.pt"

step pytest "$python" -m pytest -q -p no:cacheprovider
step train_amp "$python" train.py --weights "$weights" --data "$data" --imgsz 640 --batch-size 32 --epochs 3 \
    --device 0 --workers 8 --project "$work/train" --name amp
step torchrun_nccl "$python" -m torch.distributed.run --nproc_per_node 1 train.py --weights "$weights" \
    --data "$data" --imgsz 640 --batch-size 32 --epochs 1 --device 0 --workers 4 --sync-bn \
    --project "$work/train" --name ddp
cp "$work/train/amp/results.csv" "$out/train_amp_results.csv" 2>/dev/null
step val_fp32 "$python" val.py --weights "$weights" --data "$data" --imgsz 640 --batch-size 32 --device 0 \
    --project "$work/val" --name fp32
step val_half "$python" val.py --weights "$weights" --data "$data" --imgsz 640 --batch-size 32 --device 0 \
    --half --project "$work/val" --name half
step val_trained "$python" val.py --weights "$work/train/amp/weights/best.pt" --data "$data" --imgsz 640 \
    --batch-size 32 --device 0 --half --project "$work/val" --name trained
step detect "$python" detect.py --weights "$weights" --source "$shared/images" --device 0 --half \
    --project "$work/detect" --name gpu
rm -rf "$work"
