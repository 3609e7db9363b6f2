#!/usr/bin/env python3
"""onnxruntime latency on the graphs and inputs of the kdsr criterion benches, and the
tract / onnxruntime table.

The criterion bench (`cargo bench -p kdsr-benches`) writes BENCH_DIR (target/tmp/kdsr-bench):
manifest.json, the folded graph it exported, the LR inputs, their D and tract's outputs. This
script runs the same ONNX files on the same inputs in onnxruntime (CPUExecutionProvider,
intra_op_num_threads = the tract thread count, inter_op_num_threads = 1, sequential execution,
all graph optimizations), times each case (warm-up runs, then the median of --iters runs), checks
every output against tract's (max |delta| <= --tolerance), and writes BENCH_DIR/ort.json. With
--criterion DIR it also reads criterion's estimates (DIR/SIZE/GRAPH/tN/new/estimates.json, median)
and prints / writes the Markdown table of both (BENCH_DIR/table.md).

Graph forms, as in the criterion bench:
  dynamic    the dynamic graph (lr -> sr)
  split      the SR graph of the split pair, given D estimated once (lr, D -> sr)
  split_ide  the IDE (lr -> D) then the SR graph, both on every call
  folded     the folded graph (lr -> sr)

Usage: python benches/ort_bench.py BENCH_DIR [--criterion DIR] [--iters N] [--warmup N]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def read_f32(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def runner(form, sess, lr, d):
    """A zero-argument function that upscales `lr` with graph form `form`; returns sr."""
    if form == "dynamic":
        return lambda: sess["dynamic"].run(["sr"], {"lr": lr})[0]
    if form == "folded":
        return lambda: sess["folded"].run(["sr"], {"lr": lr})[0]
    if form == "split":
        return lambda: sess["sr"].run(["sr"], {"lr": lr, "D": d})[0]
    if form == "split_ide":

        def run():
            (dd,) = sess["ide"].run(["D"], {"lr": lr})
            return sess["sr"].run(["sr"], {"lr": lr, "D": dd})[0]

        return run
    raise ValueError(f"unknown graph form {form}")


def time_ms(fn, warmup, iters):
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return out, times


def criterion_ms(criterion_dir, case, form, threads):
    p = os.path.join(criterion_dir, case, form, f"t{threads}", "new", "estimates.json")
    if not os.path.isfile(p):
        return None
    with open(p) as f:
        est = json.load(f)
    return est["median"]["point_estimate"] / 1e6


def table(manifest, rows, criterion_dir):
    lines = [
        "| LR size | graph | threads | tract ms | onnxruntime ms | tract / ort |",
        "|---|---|---|---|---|---|",
    ]
    cases = [c["name"] for c in manifest["cases"]]
    forms, threads = manifest["graph_forms"], manifest["threads"]
    order = lambda r: (cases.index(r["size"]), forms.index(r["graph"]), threads.index(r["threads"]))
    for r in sorted(rows, key=order):
        tract = criterion_ms(criterion_dir, r["size"], r["graph"], r["threads"])
        r["tract_median_ms"] = tract
        ratio = f"{tract / r['median_ms']:.2f}" if tract else "—"
        tract_s = f"{tract:.0f}" if tract else "—"
        lines.append(
            f"| {r['size']} | {r['graph']} | {r['threads']} | {tract_s} | "
            f"{r['median_ms']:.0f} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench_dir", help="the folder the criterion bench prepared (manifest.json)")
    ap.add_argument("--criterion", help="criterion's output folder (target/criterion)")
    ap.add_argument("--iters", type=int, default=10, help="timed runs per case (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per case (default 2)")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="max |sr - tract sr|")
    a = ap.parse_args()

    manifest_path = os.path.join(a.bench_dir, "manifest.json")
    if not os.path.isfile(manifest_path):
        sys.exit(f"{manifest_path} is missing: run `cargo bench -p kdsr-benches` (or benches/run.sh) first")
    with open(manifest_path) as f:
        m = json.load(f)
    g = m["graphs"]
    c, s = m["n_feats"], m["scale"]
    print(
        f"onnxruntime {ort.__version__} (CPUExecutionProvider), numpy {np.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        file=sys.stderr,
    )
    rows, failed = [], []
    for threads in m["threads"]:
        sess = {k: session(g[k], threads) for k in ("dynamic", "ide", "sr", "folded")}
        for case in m["cases"]:
            h, w = case["height"], case["width"]
            lr = read_f32(case["input"], (1, 3, h, w))
            d = read_f32(case["d"], (1, c))
            for form in m["graph_forms"]:
                sr, times = time_ms(runner(form, sess, lr, d), a.warmup, a.iters)
                ref = read_f32(case["outputs"][form], (1, 3, s * h, s * w))
                diff = float(np.abs(sr - ref).max())
                row = {
                    "size": case["name"],
                    "graph": form,
                    "threads": threads,
                    "median_ms": statistics.median(times),
                    "min_ms": min(times),
                    "mean_ms": statistics.fmean(times),
                    "runs": len(times),
                    "max_abs_diff_vs_tract": diff,
                }
                rows.append(row)
                print(
                    f"ort {case['name']:>8} {form:<9} t{threads}: median {row['median_ms']:8.1f} ms"
                    f"  min {row['min_ms']:8.1f} ms  max|sr - tract| {diff:.2e}",
                    file=sys.stderr,
                )
                if not diff <= a.tolerance:
                    failed.append(f"{case['name']} {form} t{threads}: {diff:e}")
    result = {"onnxruntime": ort.__version__, "iters": a.iters, "warmup": a.warmup, "rows": rows}
    if a.criterion:
        md = table(m, rows, a.criterion)
        with open(os.path.join(a.bench_dir, "table.md"), "w") as f:
            f.write(md)
        print(md)
    with open(os.path.join(a.bench_dir, "ort.json"), "w") as f:
        json.dump(result, f, indent=2)
    if failed:
        sys.exit("onnxruntime output differs from tract's: " + "; ".join(failed))


if __name__ == "__main__":
    main()
