#!/usr/bin/env bash
# One device call: camera fine-tunes (J1 lr 1e-4, J2 lr 2e-4) and the Table 4 rows (blind recipe,
# seeds 0/1: teacher, then students kd / no-kd / plain), sized by a probe to a wall-clock deadline.
# env: DL (deadline s from start), DEV (cuda|cpu), OUT, T (trainer binary), PROBE_S, BATCH, B4,
#   CAM (0: no camera fine-tunes, the whole call for the Table 4 rows; default 1),
#   T4_STUDENT_SET (space-separated KEY=VALUE, a --set for each of the three students, e.g.
#   "idr.regress_weight=0.0" to train them without the [idr] regression)
set -u
T0=$(date +%s)
el() { echo $(($(date +%s) - T0)); }
DL=${DL:-500}; DEV=${DEV:-cuda}; PROBE_S=${PROBE_S:-35}; BATCH=${BATCH:-64}; B4=${B4:-32}
CAM=${CAM:-1}; T4_STUDENT_SET=${T4_STUDENT_SET:-}
R=/tmp/kruns; rm -rf $R; mkdir -p $R "$OUT"
echo "start $(date -u +%FT%TZ) DL=$DL DEV=$DEV CAM=$CAM T4_STUDENT_SET='$T4_STUDENT_SET'"
if [ -z "${T:-}" ]; then
  PYLIB=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
  export LD_LIBRARY_PATH=$PYLIB
  xz -dc .dev/trainer.xz > /tmp/trainer && chmod +x /tmp/trainer; T=/tmp/trainer
  nvidia-smi -L; nproc
fi
W=.dev/w
DATA='data.train_dirs=[".dev/data/T91",".dev/data/BSD200"]'
base=(-q --log-every 10 --set "run.device=\"$DEV\"" --set run.threads=1 --set data.workers=2
  --set data.hr_patch=128 --set "$DATA" --set run.keep_last=2)
cam=(--config cpu-edge-camera --stage student --teacher $W/cam-teacher.safetensors
  --set "student.pretrain=\"$W/cam-student.safetensors\"" --set student.encoder_iterations=0
  --set degradation.blur_prob=0.7 --set degradation.noise_prob=0.6 --set data.batch_size=$BATCH)
t4=(--config cpu-edge-blind --set data.batch_size=$B4)
t4s=()
for kv in $T4_STUDENT_SET; do t4s+=(--set "$kv"); done
rate() { # DIR: it/s over the second half of its metrics
  python3 - "$1" <<'EOF'
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]+"/metrics.jsonl") if '"elapsed_s"' in l]
if len(rows)<2: print(0); sys.exit()
a,b=(rows[len(rows)//2],rows[-1]) if len(rows)>=4 else (rows[0],rows[-1])
print(max(0.0,(b["iter"]-a["iter"])/max(1e-9,b["elapsed_s"]-a["elapsed_s"])))
EOF
}
# -- probe: the phase-A mix (two camera students, two teachers; CAM=0: the two teachers) at once
probe=()
if [ "$CAM" != 0 ]; then
  $T train "${base[@]}" "${cam[@]}" --out $R/p1 --set student.iterations=100000 --set run.val_every=0 --set run.save_every=100000 & probe+=($!)
  $T train "${base[@]}" "${cam[@]}" --out $R/p2 --set student.iterations=100000 --set run.val_every=0 --set run.save_every=100000 & probe+=($!)
fi
$T train "${base[@]}" "${t4[@]}" --stage teacher --out $R/p3 --set teacher.iterations=100000 --set run.val_every=0 --set run.save_every=100000 & probe+=($!)
$T train "${base[@]}" "${t4[@]}" --stage teacher --out $R/p4 --set teacher.iterations=100000 --set run.val_every=0 --set run.save_every=100000 & probe+=($!)
sleep "$PROBE_S"
kill "${probe[@]}" 2>/dev/null; wait "${probe[@]}" 2>/dev/null
rc=0; [ "$CAM" != 0 ] && rc=$(rate $R/p1/student)
rt=$(rate $R/p3/teacher)
echo "probe at $(el)s: camera student $rc it/s, teacher $rt it/s (${#probe[@]} at once)"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
left=$((DL - $(el) - 25))
# With the camera jobs (round 1 on the H200: 4 processes at once in the probe and the teacher
# phase, 8 in the student phase): the camera rows get 70 % of the time at the probe's rate, and
# a Table 4 row a quarter of it at the teacher's. Without (CAM=0): the teachers run 2 at once,
# then the students 6 at once; round 1 measured a student step at ~1.13x a teacher's GPU time
# (8 x 13.8 against 4 x 31 it/s), so with the GPU shared evenly a row of N iterations takes
# ~N / rt for the teacher and ~3 x 1.13 x N / rt for its students: N = rt x left / 4.4, less a
# margin.
read -r NC N4 SE <<<"$(python3 -c "
rc,rt,L,cam=$rc,$rt,$left,$CAM
nc=max(int(rc*L*0.7/100)*100,100) if cam else 0
n4=max(int(rt*L*(0.25 if cam else 1/4.8)/100)*100,100)
print(nc, n4, max(n4//4,25))" 2>/dev/null || echo 2000 1000 250)"
echo "plan: left ${left}s; camera $NC iterations; Table 4 rows $N4 iterations (ckpt every $SE)"
if [ "$CAM" != 0 ]; then
  for j in 1 2; do
    lr=$([ $j = 1 ] && echo 1e-4 || echo 2e-4)
    $T train "${base[@]}" "${cam[@]}" --out $R/cam$j --set student.iterations=$NC \
      --set student.lr=$lr --set student.decay_every=$((NC * 2 / 5)) \
      --set run.val_every=$((NC / 4)) --set run.save_every=$((NC / 5)) &
  done
fi
seedrun() { # SEED
  local s=$1 d=$R/t4-s$1
  $T train "${base[@]}" "${t4[@]}" --stage teacher --out $d --set run.seed=$s \
    --set teacher.iterations=$N4 --set teacher.decay_every=$((N4 * 2 / 3)) \
    --set run.val_every=$N4 --set run.save_every=$SE || { echo "teacher s$s failed"; return; }
  echo "teacher s$s done at $(el)s"
  local st=(--stage student --teacher $d/teacher/final.safetensors --set run.seed=$s
    --set student.iterations=$N4 --set student.decay_every=$((N4 * 2 / 3))
    --set run.val_every=$N4 --set run.save_every=$SE "${t4s[@]}")
  $T train "${base[@]}" "${t4[@]}" "${st[@]}" --out $d/kd & local a=$!
  $T train "${base[@]}" "${t4[@]}" "${st[@]}" --out $d/nokd --set student.kd_weight=0 & local b=$!
  $T train "${base[@]}" "${t4[@]}" "${st[@]}" --out $d/plain --set 'model.block_conv="plain"' & local c=$!
  wait $a $b $c
  echo "students s$s done at $(el)s"
}
seedrun 0 & seedrun 1 &
while [ "$(el)" -lt $((DL - 20)) ] && [ -n "$(jobs -rp)" ]; do sleep 5; done
echo "stopping at $(el)s; running: $(jobs -rp | wc -l)"
pkill -f "$T train" 2>/dev/null; sleep 2
for f in $(find $R -name metrics.jsonl | grep -v '/p[0-9]/'); do
  echo "$f: $(tail -n1 $f | cut -c1-200)"
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
# pack: the cameras whole (no resume state); Table 4 finals per seed
cd $R
for j in cam1 cam2; do
  [ -d $j ] || continue
  f=$j/student/final.safetensors
  [ -f $f ] || f=$(ls $j/student/iter_*.safetensors 2>/dev/null | tail -n1)
  tar rf "$OUT/cam.tar" $j/student/metrics.jsonl $j/student/train.toml $f ${f%.safetensors}.json
done
for s in 0 1; do
  tar cf "$OUT/t4-s$s.tar" --exclude='last.state*' --exclude='iter_*' --exclude='best.*' t4-s$s 2>/dev/null
  # and the newest periodic checkpoint of any unfinished student
  for r in kd nokd plain; do
    [ -f t4-s$s/$r/student/final.safetensors ] && continue
    ls t4-s$s/$r/student/iter_*.safetensors 2>/dev/null | while read -r f; do
      tar rf "$OUT/t4-s$s.tar" "$f" "${f%.safetensors}.json"; done
  done
done
ls -la "$OUT"
echo "end at $(el)s"
