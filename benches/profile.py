"""Where the time goes, tract next to onnxruntime, for one ONNX file.

Runs onnxruntime's profiler (``SessionOptions.enable_profiling``) on the graph with the input the
tract profile used (``lr.f32``, ``d.f32`` written by ``runtime/examples/profile.rs --dump``),
and groups both engines' per-node times by the ONNX node each comes from: a tract node or an
onnxruntime kernel belongs to the ONNX node whose name is its longest dotted prefix (tract keeps
the ONNX names and appends ``.suffix`` when it splits a node; onnxruntime names its kernels after
the node, fused kernels after the first node fused). Rows are ONNX op kinds with their kernel
size and channels (``Conv 3×3 32→128``); time spent in nodes with no ONNX counterpart (tract's
own ops, onnxruntime's layout reorders) gets a row of its own.

Usage (``bash benches/profile.sh`` runs it for the shipped graphs)::

    python benches/profile.py --onnx G.onnx --inputs DIR --threads 1 --iters 5 \
        --tract "tract (auto)=DIR/tract-auto.json" [--tract LABEL=JSON ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def node_label(node, inits: dict) -> str:
    """The op kind of an ONNX node: op type, and for Conv its kernel, channels and groups."""
    if node.op_type != "Conv":
        return node.op_type
    w = inits.get(node.input[1])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if w is None:
        k = attrs.get("kernel_shape", ["?", "?"])
        return f"Conv {k[0]}×{k[1]} dynamic depthwise (IDR-DDC)"
    o, i, kh, kw = w.dims
    g = attrs.get("group", 1)
    kind = " depthwise" if g > 1 and g == o else (f" g{g}" if g > 1 else "")
    return f"Conv {kh}×{kw} {i * g}→{o}{kind}"


def labeller(model):
    """``label(name, conv_kernel)``: the op kind of the ONNX node a tract node or onnxruntime
    kernel comes from, or None. onnxruntime names kernels after a node plus ``_nchwc`` /
    ``_token_N`` and names a convolution fused with the LeakyReLU after it by the LeakyReLU: a
    ``conv_kernel`` so named is counted as the convolution that feeds that node."""
    inits = {t.name: t for t in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node if n.name}
    producer = {o: n for n in model.graph.node for o in n.output}
    labels = {name: node_label(n, inits) for name, n in nodes.items()}

    def label(name: str, conv_kernel: bool = False):
        probe = re.sub(r"(_nchwc|_token_\d+)+$", "", name)
        while probe:
            if probe in labels:
                node = nodes[probe]
                if conv_kernel and node.op_type != "Conv":
                    src = producer.get(node.input[0]) if node.input else None
                    if src is not None and src.op_type == "Conv":
                        return labels[src.name]
                return labels[probe]
            if "." not in probe:
                break
            probe = probe.rsplit(".", 1)[0]
        return None

    return label, collections.Counter(labels.values())


def ort_profile(path: str, feeds: dict, threads: int, iters: int) -> list[dict[str, float]]:
    """Per-run {kernel node name: µs} of ``iters`` profiled runs after one warm-up run."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    tmp = tempfile.mkdtemp(prefix="kdsr-ort-profile-")
    so.profile_file_prefix = os.path.join(tmp, "ort")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(iters + 1):
        sess.run(None, feeds)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )[1:]
    out = []
    for r in runs:
        lo, hi = r["ts"], r["ts"] + r["dur"]
        per: dict[str, float] = collections.defaultdict(float)
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and lo <= e["ts"] <= hi:
                per[e["name"][: -len("_kernel_time")] + "|" + e["args"].get("op_name", "?")] += e["dur"]
        out.append(per)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--inputs", required=True, help="folder with lr.f32 (and d.f32 for SR graphs)")
    ap.add_argument("--size", required=True, help="WxH of lr.f32 (width first)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--tract", action="append", default=[], help="LABEL=profile.json (repeatable)")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    model = onnx.load(a.onnx)
    label, counts = labeller(model)
    feeds = {"lr": np.fromfile(os.path.join(a.inputs, "lr.f32"), "<f4").reshape(1, 3, h, w)}
    if any(i.name == "D" for i in model.graph.input):
        d = np.fromfile(os.path.join(a.inputs, "d.f32"), "<f4")
        feeds["D"] = d.reshape(1, -1)

    columns: list[tuple[str, dict[str, float], dict[str, collections.Counter]]] = []
    for spec in a.tract:
        name, path = spec.split("=", 1)
        with open(path) as f:
            prof = json.load(f)
        cat: dict[str, float] = collections.defaultdict(float)
        ops: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for n in prof["nodes"]:
            c = label(n["name"]) or f"tract only: {n['op']}"
            cat[c] += n["ms"]
            ops[c][n["op"]] += n["ms"]
        columns.append((name, cat, ops))

    runs = ort_profile(a.onnx, feeds, a.threads, a.iters)
    names = set().union(*runs) if runs else set()
    ort_cat: dict[str, float] = collections.defaultdict(float)
    ort_ops: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for key in names:
        node, op = key.split("|", 1)
        ms = statistics.median(r.get(key, 0.0) for r in runs) / 1e3
        c = label(node, conv_kernel=op in ("Conv", "FusedConv")) or f"onnxruntime only: {op}"
        ort_cat[c] += ms
        ort_ops[c][op] += ms
    columns.insert(0, ("onnxruntime", ort_cat, ort_ops))

    cats = sorted(set().union(*(c for _, c, _ in columns)), key=lambda c: -max(col.get(c, 0.0) for _, col, _ in columns))
    head = "| op kind (ONNX nodes) | " + " | ".join(n for n, _, _ in columns) + " | ops inside (first tract column, ms) |"
    print(head)
    print("|" + "---|" * (len(columns) + 2))
    first_tract = columns[1][2] if len(columns) > 1 else {}
    for c in cats:
        n = counts.get(c)
        name = f"{c} ×{n}" if n else c
        cells = " | ".join(f"{col.get(c, 0.0):.1f}" for _, col, _ in columns)
        inside = ", ".join(f"{op} {ms:.0f}" for op, ms in first_tract.get(c, collections.Counter()).most_common(4))
        print(f"| {name} | {cells} | {inside} |")
    totals = " | ".join(f"**{sum(col.values()):.1f}**" for _, col, _ in columns)
    print(f"| **total** | {totals} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
