#!/bin/sh
# Rebuild the demo model shipped in src/ganforge/models/demo/ (see the training notes of issue 3).
#
#   scripts/train_demo.sh train [OUTDIR]        train the small preset on the bundled Fashion-MNIST subset
#                                               (conditional, 10 classes) on the CPU; interrupt at will and
#                                               continue with: ganforge train --resume OUTDIR/00000-...
#   scripts/train_demo.sh export SNAPSHOT_DIR   copy that snapshot's G_ema alone (no D, no G) into
#                                               src/ganforge/models/demo/, so `ganforge generate --class 3`
#                                               works without --network
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  train)
    outdir=${2:-demo-runs}
    exec python -m ganforge train --outdir "$outdir" --kimg 300 --snap 4 --tick 1 --workers 0 --threads 1
    ;;
  export)
    snap=${2:?usage: scripts/train_demo.sh export SNAPSHOT_DIR}
    python - "$snap" "$here/src/ganforge/models/demo" <<'PY'
import sys
import ganforge
from ganforge.formats import Checkpoint

src, dest = sys.argv[1], sys.argv[2]
ckpt = ganforge.load(src)
t = ckpt.config.get("training", {})
meta = {"kimg": t.get("kimg"), "cfg": t.get("cfg"), "dataset": "bundled fashion-mnist (10k subset, 32x32, 10 classes)",
        "class_names": t.get("class_names"), "source_snapshot": src.rstrip("/").split("/")[-1]}
Checkpoint(G=None, G_ema=ckpt.G_ema, D=None, config={"training": meta}).save(dest)
print(f"wrote {dest} (G_ema of {src}, {t.get('kimg')} kimg)")
PY
    ;;
  *)
    echo "usage: $0 train [OUTDIR] | export SNAPSHOT_DIR" >&2
    exit 2
    ;;
esac
