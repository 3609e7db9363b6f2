"""Training speed of `trainer` vs PyTorch eager on the same libtorch, in one run, as a ratio.

Runs the release `trainer` (stage 1, teacher-edge by default, fixed batch/patch, real data loader)
and `pytorch_eager.py` alternately, `--rounds` times each, and prints JSON with both rates and the
ratio trainer / PyTorch. Rates exclude warm-up iterations; the trainer's rate excludes waiting for
the data loader (its workers run ahead in other threads).

Both sides run twice per round: with glibc's default malloc, and with the host-malloc setting
`trainer train` applies by default (`run.tune_malloc`: no mmap for large blocks, no trimming; for
PyTorch the same through glibc's MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ variables). The JSON
gives the like-for-like ratios and the shipped trainer against PyTorch as it comes.

Usage (after `source scripts/env.sh` and `cargo build --release -p kdsr-trainer`):
  python trainer/bench/compare.py [--preset student-edge] [--batch 8] [--patch 192] [--iters 30]
"""
import argparse, json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "2147483647"}


def rust_rate(a, out, tuned):
    total = a.warmup + a.iters
    cmd = [os.path.join(ROOT, "target", "release", "trainer"), "train", "--config", "cpu-edge", "--stage", "teacher",
           "--out", out, "-q", "--log-every", "1",
           "--set", f'model.preset="{a.preset}"', "--set", f"teacher.iterations={total}",
           "--set", f"data.batch_size={a.batch}", "--set", f"data.hr_patch={a.patch}",
           "--set", "run.val_every=0", "--set", f"run.save_every={total}", "--set", f'run.device="{a.device}"',
           "--set", 'data.train_dirs=["data/T91"]', "--set", f"run.tune_malloc={str(tuned).lower()}"]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    rows = [json.loads(l) for l in open(os.path.join(out, "teacher", "metrics.jsonl")) if '"loss"' in l]
    secs = {r["iter"]: r["iter"] / r["it_per_s"] for r in rows}
    return a.iters / (secs[total] - secs[a.warmup])


def py_rate(a, sizes, tuned):
    c, n, r = sizes
    cmd = [sys.executable, os.path.join(HERE, "pytorch_eager.py"), "--c", str(c), "--n", str(n), "--r", str(r),
           "--batch", str(a.batch), "--patch", str(a.patch), "--iters", str(a.iters), "--warmup", str(a.warmup),
           "--device", a.device.replace("auto", "cpu")]
    env = dict(os.environ, **TUNED_ENV) if tuned else os.environ
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["it_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="student-edge")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    sizes = {"student-edge": (32, 8, 3), "student-tiny": (16, 2, 2), "student-m": (64, 53, 9)}[a.preset]
    rates = {k: [] for k in ("trainer_default", "pytorch_default", "trainer_tuned", "pytorch_tuned")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            for tuned in (False, True):
                m = "tuned" if tuned else "default"
                rates[f"trainer_{m}"].append(rust_rate(a, os.path.join(tmp, f"r{i}{m}"), tuned))
                rates[f"pytorch_{m}"].append(py_rate(a, sizes, tuned))
    best = {k: max(v) for k, v in rates.items()}
    print(json.dumps({"preset": a.preset.replace("student", "teacher"), "batch": a.batch, "patch": a.patch,
                      "device": a.device, "it_per_s": rates,
                      "ratio_default_malloc": best["trainer_default"] / best["pytorch_default"],
                      "ratio_tuned_malloc": best["trainer_tuned"] / best["pytorch_tuned"],
                      "ratio_trainer_as_shipped_over_pytorch_default": best["trainer_tuned"] / best["pytorch_default"]}))

if __name__ == "__main__":
    main()
