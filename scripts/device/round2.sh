#!/usr/bin/env bash
# Second call: three fine-tunes from cam2 (K1 same mix lr 1e-4; K2 blur/noise 0.5 lr 1e-4;
# K3 same mix batch 128 lr 2e-4), sized by a short probe to the deadline DL.
set -u
T0=$(date +%s); el() { echo $(($(date +%s) - T0)); }
DL=${DL:-290}; R=/tmp/kruns; rm -rf $R; mkdir -p $R
PYLIB=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
export LD_LIBRARY_PATH=$PYLIB
xz -dc .dev/trainer.xz > /tmp/trainer && chmod +x /tmp/trainer; T=/tmp/trainer
W=.dev/w
base=(-q --log-every 10 --set 'run.device="cuda"' --set run.threads=1 --set data.workers=2
  --set data.hr_patch=128 --set 'data.train_dirs=[".dev/data/T91",".dev/data/BSD200"]' --set run.keep_last=2
  --config cpu-edge-camera --stage student --teacher $W/cam-teacher.safetensors
  --set "student.pretrain=\"$W/cam2.safetensors\"" --set student.encoder_iterations=0)
k1=(--set degradation.blur_prob=0.7 --set degradation.noise_prob=0.6 --set data.batch_size=64 --set student.lr=1e-4)
k2=(--set degradation.blur_prob=0.5 --set degradation.noise_prob=0.5 --set data.batch_size=64 --set student.lr=1e-4)
k3=(--set degradation.blur_prob=0.7 --set degradation.noise_prob=0.6 --set data.batch_size=128 --set student.lr=2e-4)
for k in 1 2 3; do v=k$k[@]; $T train "${base[@]}" "${!v}" --out $R/p$k --set student.iterations=100000 --set run.val_every=0 --set run.save_every=100000 & done
sleep 28; pkill -f "$T train"; sleep 1
rate() { python3 - "$1" <<'P'
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]+"/student/metrics.jsonl") if '"elapsed_s"' in l]
a,b=(rows[len(rows)//2],rows[-1]) if len(rows)>=4 else (rows[0],rows[-1])
print(int((b["iter"]-a["iter"])/max(1e-9,b["elapsed_s"]-a["elapsed_s"])))
P
}
left=$((DL - $(el) - 25))
for k in 1 2 3; do
  r=$(rate $R/p$k || echo 10); n=$(( r * left * 9 / 10 / 100 * 100 )); [ $n -lt 200 ] && n=200
  echo "k$k: $r it/s probe, $n iterations"
  v=k$k[@]; $T train "${base[@]}" "${!v}" --out $R/k$k --set student.iterations=$n \
    --set student.decay_every=$((n * 2 / 5)) --set run.val_every=$((n / 2)) --set run.save_every=$((n / 5)) &
done
while [ "$(el)" -lt $((DL - 15)) ] && [ -n "$(jobs -rp)" ]; do sleep 3; done
echo "stopping at $(el)s; running: $(jobs -rp | wc -l)"; pkill -f "$T train"; sleep 1
cd $R
for j in k1 k2 k3; do
  f=$j/student/final.safetensors
  [ -f $f ] || f=$(ls $j/student/iter_*.safetensors 2>/dev/null | tail -n1)
  tail -n1 $j/student/metrics.jsonl | cut -c1-200
  tar rf "$OUT/k.tar" $j/student/metrics.jsonl $j/student/train.toml $f ${f%.safetensors}.json
done
ls -la $OUT; echo "end at $(el)s"
