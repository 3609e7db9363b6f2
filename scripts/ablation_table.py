"""Collects the ablation evaluations of scripts/ablation.sh into RESULTS/ablation.{md,json}.

Usage: python3 scripts/ablation_table.py OUT RESULTS TEACHER ITERS PATCH BATCH ROW...
Reads OUT/eval-teacher.json and OUT/eval-ROW.json (written by `trainer eval`); the paper's
numbers (Tables 4 and 5, KDSR_S-M scale, Set5/Set14 Gaussian8 ×4 where given) are quoted from
docs/reference/paper-tables.md only as a reminder of the expected ordering.
"""
import json
import os
import sys

LABELS = {
    "teacher": "teacher (IDE sees LR + HR)",
    "kd-kl": "student, L1 + KL KD (KDSR)",
    "no-kd": "student, L1 only (no KD)",
    "plain": "student, KL KD, plain conv instead of IDR-DDC",
    "kd-l1": "student, L1 + L1 KD on D'",
    "kd-l2": "student, L1 + L2 KD on D'",
}


def means(path):
    d = json.load(open(path))
    out = {}
    for r in d["results"]:
        m = r["report"]["mean"]
        out[r["set"]] = {"psnr": m[0], "ssim": m[1], "bicubic_psnr": m[2]}
    return out


def main():
    out, results, teacher, iters, patch, batch, *rows = sys.argv[1:]
    table = {"teacher": means(os.path.join(out, "eval-teacher.json"))}
    for row in rows:
        table[row] = means(os.path.join(out, f"eval-{row}.json"))
    sets = sorted(table["teacher"].keys(), key=lambda s: ["Set5", "Set14"].index(s) if s in ("Set5", "Set14") else 9)
    setup = (f"students: {iters} iterations each, batch {batch}, HR patch {patch}, seed 0, G initialised from "
             f"the teacher's G, lr 2e-4 halved at {int(iters) * 2 // 3}; teacher: `{teacher}`")
    lines = ["# Table 4 / Table 5 ablations at our scale", "",
             "Gaussian8 ×4 (σ 1.8…3.2), mean PSNR / SSIM on Y (official KDSR metric). " + setup + ".",
             "Made by `bash scripts/ablation.sh`.", "",
             "| model | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for row in ["teacher"] + rows:
        cells = [f"{table[row][s]['psnr']:.2f} / {table[row][s]['ssim']:.4f}" for s in sets]
        lines.append(f"| {LABELS.get(row, row)} | " + " | ".join(cells) + " |")
    lines.append("| bicubic (same LR) | " + " | ".join(f"{table['teacher'][s]['bicubic_psnr']:.2f}" for s in sets) + " |")
    order = ["teacher", "kd-kl", "no-kd", "plain"]
    if all(r in table for r in order):
        holds = {s: all(table[a][s]["psnr"] > table[b][s]["psnr"] for a, b in zip(order, order[1:])) for s in sets}
        lines += ["", "Paper's ordering teacher > KD > no KD > no IDR-DDC (PSNR): " +
                  ", ".join(f"{s} {'holds' if h else 'does not hold'}" for s, h in holds.items()) + "."]
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "ablation.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(results, "ablation.json"), "w") as f:
        json.dump({"setup": {"teacher": teacher, "iterations": int(iters), "hr_patch": int(patch),
                             "batch": int(batch), "seed": 0}, "rows": table}, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
