"""Collects the Table 4 runs of scripts/device/round1.sh (two seeds per row) into
RESULTS/table4.{md,json}.

Usage: python3 scripts/table4_table.py EVALS RESULTS ITERS BATCH
Reads EVALS/eval-t4-s{0,1}-{teacher,kd,nokd,plain}.json (written by `trainer eval --data
data/Set5 data/Set14`, Gaussian8 x4) and says, per set and per seed, whether the paper's ordering
teacher > student with KD > student without KD > plain conv holds.
"""
import json
import os
import sys

from ablation_table import means

ROWS = [
    ("teacher", "teacher (IDE sees LR + HR)"),
    ("kd", "student, L1 + KL KD + [idr] (KDSR + our additions)"),
    ("nokd", "student, L1 + [idr], no KD"),
    ("plain", "student, KL KD + [idr], plain 3x3 conv instead of IDR-DDC"),
]
SEEDS = [0, 1]


def main():
    evals, results, iters, batch = sys.argv[1:]
    t = {row: {s: means(os.path.join(evals, f"eval-t4-s{s}-{row}.json")) for s in SEEDS}
         for row, _ in ROWS}
    sets = ["Set5", "Set14"]
    lines = ["# Table 4 at our scale, two seeds per row (blind recipe)", "",
             f"`cpu-edge-blind`, every row {iters} iterations at batch {batch}, HR 128, seed 0 and 1; "
             "each seed's students distilled from that seed's teacher (G initialised from its G, but "
             "for the plain row's `da_conv1`). Gaussian8 x4 (sigma 1.8...3.2), mean PSNR-Y (official "
             "KDSR metric). Trained on a lent H200 by `scripts/device/round1.sh`; evaluated on the CPU "
             "with `trainer eval --data data/Set5 data/Set14`.", "",
             "| model | Set5 seed 0 / 1 | Set5 mean | Set14 seed 0 / 1 | Set14 mean |", "|---|---|---|---|---|"]
    mean = {}
    for row, label in ROWS:
        cells = []
        for st in sets:
            v = [t[row][s][st]["psnr"] for s in SEEDS]
            mean[(row, st)] = sum(v) / len(v)
            cells += [" / ".join(f"{x:.2f}" for x in v), f"{mean[(row, st)]:.2f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| bicubic | | " + f"{t['teacher'][0]['Set5']['bicubic_psnr']:.2f} | | "
                 + f"{t['teacher'][0]['Set14']['bicubic_psnr']:.2f} |")
    order = [r for r, _ in ROWS]
    verdict = {}
    for st in sets:
        per_seed = [all(t[a][s][st]["psnr"] > t[b][s][st]["psnr"] for a, b in zip(order, order[1:]))
                    for s in SEEDS]
        pairs = {f"{a} > {b}": [t[a][s][st]["psnr"] > t[b][s][st]["psnr"] for s in SEEDS]
                 for a, b in zip(order, order[1:])}
        verdict[st] = {"ordering_holds_per_seed": per_seed, "pairs": pairs}
        lines += ["", f"{st}: the full ordering holds for seed 0 / 1: "
                  + " / ".join("yes" if h else "no" for h in per_seed) + "; "
                  + "; ".join(f"{k}: {'/'.join('yes' if x else 'no' for x in v)}" for k, v in pairs.items())]
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "table4.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(results, "table4.json"), "w") as f:
        json.dump({"setup": {"preset": "cpu-edge-blind", "iterations": int(iters), "batch": int(batch),
                             "hr_patch": 128, "seeds": SEEDS},
                   "rows": {r: {str(s): t[r][s] for s in SEEDS} for r, _ in ROWS},
                   "verdict": verdict}, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
