"""kdsr-edge next to the other CPU runtimes, on the same ONNX files, inputs and thread counts.

One interleaved run: for every round, for every case (graph form × LR size × threads), every
engine times a block of calls, the engines' order rotating from round to round; an engine's time
for a case is the median of all its calls. A second table pairs each engine with onnxruntime by
round (the ratio of their block medians in the same round, its median over rounds and range),
which a VM whose speed drifts within minutes leaves less noisy. Engines run in their own
processes so their thread pools never share one; a pause after each block lets spinning pools
go idle.

Engines:
  kdsr-edge      the ``kdsr-edge`` binary users run: ``kdsr-edge bench --json`` per block (it
                 loads the model, optimizes the plan, makes one untimed call, then times the block),
                 as it runs by default; ``kdsr-edge-tract`` with tract's own ops only
                 (``KDSR_EDGE_OPS=none``), ``kdsr-edge-no-winograd`` without the Winograd convolution
                 (``KDSR_EDGE_OPS=depth-to-space``, the default before it; runtime/src/ops);
                 ``kdsr-edge-bf16`` with ``--precision bf16`` (3×3 convolutions in bf16 on
                 AMX), only where /proc/cpuinfo has amx_bf16
  onnxruntime    PyPI onnxruntime, CPUExecutionProvider, intra_op_num_threads = threads,
                 inter_op_num_threads = 1, sequential, all graph optimizations
  openvino-f32   PyPI openvino, CPU, INFERENCE_PRECISION_HINT f32, latency hint, one stream,
                 INFERENCE_NUM_THREADS = threads, the model reshaped to the case's static shape
  openvino-bf16  the same with INFERENCE_PRECISION_HINT bf16, only where /proc/cpuinfo has
                 avx512_bf16 or amx_bf16
  ncnn           PyPI ncnn (Winograd and SGEMM convolution on, fp16/bf16 storage off) on the
                 graph pnnx (PyPI) converts
  mnn            PyPI MNN on the graph ``mnnconvert`` converts, session API, numThread = threads

Every engine's output of every case is compared with onnxruntime's (max |Δ|); kdsr-edge's comes
from ``kdsr-edge bench --dump``, whose input (``lr.f32``, and ``d.f32`` for the split SR graph)
every engine is given. A conversion or load an engine cannot do is reported, not fatal.

Usage (``bash benches/run.sh`` prepares the graphs and calls it)::

    python benches/compare.py --dir target/tmp/kdsr-compare --kdsr-edge target/release/kdsr-edge \
        --folded DIR/student-edge-folded.onnx --student-m DIR/student-m-random.onnx [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

PAUSE_S = 0.25

# kdsr-edge variants: KDSR_EDGE_OPS (None: unset, kdsr-edge's default; see runtime/src/ops) and
# --precision for each.
KDSR_VARIANTS = {
    "kdsr-edge-tract": ("none", "f32"),
    "kdsr-edge-no-winograd": ("depth-to-space", "f32"),
    "kdsr-edge": (None, "f32"),
    "kdsr-edge-bf16": (None, "bf16"),
}


# ---------------------------------------------------------------------------------------------
# Workers: one process per Python engine, JSON lines on stdin/stdout.


def ort_session(path, threads):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ort_bench import session  # the criterion comparison's settings, listed in the docs above

    sess = session(path, threads)
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: sess.run(None, feeds)[names.index("sr")]


def openvino_session(path, threads, precision, feeds):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    model.reshape({k: list(v.shape) for k, v in feeds.items()})
    compiled = core.compile_model(
        model,
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
        },
    )
    req = compiled.create_infer_request()
    out = compiled.output("sr")

    def run(f):
        req.infer(f)
        return req.get_tensor(out).data

    return run


def ncnn_blobs(param_path):
    """Input blob names (in order) and the output blobs (produced, never consumed)."""
    with open(param_path) as f:
        lines = f.read().split("\n")[2:]
    inputs, produced, consumed = [], [], set()
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        kind, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        bottoms = parts[4 : 4 + n_in]
        tops = parts[4 + n_in : 4 + n_in + n_out]
        consumed.update(bottoms)
        produced.extend(tops)
        if kind == "Input":
            inputs.extend(tops)
    return inputs, [b for b in produced if b not in consumed]


def ncnn_session(path, threads, feeds, workdir):
    import ncnn

    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    onnx_copy = os.path.join(workdir, "model.onnx")
    base = os.path.join(workdir, "model")  # pnnx writes model.ncnn.param and model.ncnn.bin
    if not os.path.exists(base + ".ncnn.param"):
        shutil.copyfile(path, onnx_copy)
        shapes = ",".join("[" + ",".join(str(d) for d in v.shape) + "]" for v in feeds.values())
        r = subprocess.run(
            ["pnnx", onnx_copy, f"inputshape={shapes}"],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not os.path.exists(base + ".ncnn.param"):
            tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
            raise RuntimeError("pnnx conversion failed: " + " / ".join(tail))
    ins, outs = ncnn_blobs(base + ".ncnn.param")
    if len(ins) != len(feeds) or not outs:
        raise RuntimeError(f"pnnx graph has inputs {ins} and outputs {outs}")
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.use_winograd_convolution = True
    net.opt.use_sgemm_convolution = True
    net.opt.use_fp16_packed = False
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    net.opt.use_vulkan_compute = False
    if net.load_param(base + ".ncnn.param") != 0 or net.load_model(base + ".ncnn.bin") != 0:
        raise RuntimeError("ncnn could not load the pnnx graph")
    order = list(feeds)
    sr_size = 3 * 16 * feeds["lr"].shape[2] * feeds["lr"].shape[3]

    def run(f, blob=None):
        ex = net.create_extractor()
        for name, key in zip(ins, order):
            a = f[key]
            ex.input(name, ncnn.Mat(np.ascontiguousarray(a[0] if a.ndim == 4 else a.reshape(-1))))
        for b in [blob] if blob else outs:
            ret, mat = ex.extract(b)
            if ret != 0:
                raise RuntimeError(f"ncnn extract {b} returned {ret}")
            out = np.array(mat)
            if out.size == sr_size:
                return out[None]
        return None

    # The output blob holding `sr` (a dynamic graph also outputs `D`).
    sr_blob = next((b for b in outs if run(feeds, b) is not None), None)
    if sr_blob is None:
        raise RuntimeError(f"no output of {outs} has the size of sr")
    return lambda f: run(f, sr_blob)


def mnn_session(path, threads, feeds, workdir):
    import MNN

    os.makedirs(workdir, exist_ok=True)
    mnn_path = os.path.join(workdir, os.path.splitext(os.path.basename(path))[0] + ".mnn")
    if not os.path.exists(mnn_path):
        r = subprocess.run(
            ["mnnconvert", "-f", "ONNX", "--modelFile", path, "--MNNModel", mnn_path, "--bizCode", "kdsr"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not os.path.exists(mnn_path):
            lines = (r.stdout + r.stderr).strip().splitlines()
            why = [ln.strip() for ln in lines if "Not Support" in ln or "should know" in ln][:2] or lines[-2:]
            raise RuntimeError("mnnconvert failed: " + " / ".join(dict.fromkeys(why)))
    interp = MNN.Interpreter(mnn_path)
    sess = interp.createSession({"numThread": threads})
    tensors = {}
    for name, a in feeds.items():
        t = interp.getSessionInput(sess, name)
        interp.resizeTensor(t, tuple(a.shape))
        tensors[name] = t
    interp.resizeSession(sess)

    def run(f):
        for name, a in f.items():
            host = MNN.Tensor(a.shape, MNN.Halide_Type_Float, np.ascontiguousarray(a), MNN.Tensor_DimensionType_Caffe)
            tensors[name].copyFrom(host)
        interp.runSession(sess)
        out = interp.getSessionOutput(sess, "sr")
        shape = out.getShape()
        host = MNN.Tensor(shape, MNN.Halide_Type_Float, np.zeros(shape, np.float32), MNN.Tensor_DimensionType_Caffe)
        out.copyToHostTensor(host)
        return np.array(host.getData(), np.float32).reshape(shape)

    return run


def load_feeds(case):
    h, w = case["h"], case["w"]
    feeds = {"lr": np.fromfile(os.path.join(case["inputs"], "lr.f32"), "<f4").reshape(1, 3, h, w)}
    if case["needs_d"]:
        feeds["D"] = np.fromfile(os.path.join(case["inputs"], "d.f32"), "<f4").reshape(1, -1)
    return feeds


def worker(engine: str, workdir: str) -> int:
    # Replies go to the real stdout; whatever the engines print (MNN does, at import, from C++)
    # goes to stderr.
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sessions = {}
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            key = msg["key"]
            if msg["op"] == "load":
                case = msg["case"]
                feeds = load_feeds(case)
                t = case["threads"]
                path = case["onnx"]
                conv_dir = os.path.join(workdir, engine, f"{case['graph']}-{case['h']}x{case['w']}")
                if engine == "onnxruntime":
                    fn = ort_session(path, t)
                elif engine == "openvino-f32":
                    fn = openvino_session(path, t, "f32", feeds)
                elif engine == "openvino-bf16":
                    fn = openvino_session(path, t, "bf16", feeds)
                elif engine == "ncnn":
                    fn = ncnn_session(path, t, feeds, conv_dir)
                elif engine == "mnn":
                    fn = mnn_session(path, t, feeds, conv_dir)
                else:
                    raise RuntimeError(f"unknown engine {engine}")
                out = np.array(fn(feeds), np.float32)
                out.tofile(msg["output"])
                sessions[key] = (fn, feeds)
                reply = {"ok": True}
            elif msg["op"] == "run":
                fn, feeds = sessions[key]
                times = []
                for _ in range(msg["n"]):
                    t0 = time.perf_counter()
                    fn(feeds)
                    times.append((time.perf_counter() - t0) * 1e3)
                reply = {"times_ms": times}
            else:
                raise RuntimeError(f"unknown op {msg['op']}")
        except Exception as e:  # reported to the driver, which marks the engine unavailable
            reply = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
        print(json.dumps(reply), file=proto, flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# Driver.


class PyEngine:
    def __init__(self, name, workdir):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name, "--dir", workdir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"{self.name} worker exited"}
        return json.loads(line)

    def load(self, key, case, output):
        return self.ask({"op": "load", "key": key, "case": case, "output": output})

    def run(self, key, n):
        return self.ask({"op": "run", "key": key, "n": n})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


class KdsrEdge:
    """``kdsr-edge bench`` in a fresh process per block (see the module docs)."""

    def __init__(self, name, exe, ops, precision):
        self.name, self.exe, self.cases, self.precision = name, exe, {}, precision
        self.env = dict(os.environ)
        self.env.pop("KDSR_EDGE_OPS", None)
        if ops is not None:
            self.env["KDSR_EDGE_OPS"] = ops

    def cmd(self, case, n):
        c = [self.exe, "bench", "-m", case["kdsr_model"], "--size", f"{case['w']}x{case['h']}",
             "--threads", str(case["threads"]), "--iters", str(n), "--direct-spatial", "auto",
             "--precision", self.precision, "--json", "--no-ide"]
        return c

    def load(self, key, case, output):
        self.cases[key] = case
        if self.env.get("KDSR_EDGE_OPS") is None and self.precision == "f32":
            return {"ok": True}
        # Its own output, for the cross-check (the default variant's is the case's sr.f32).
        r = subprocess.run(self.cmd(case, 1)[:-2] + ["--no-ide", "--dump", output + ".d"], capture_output=True,
                           text=True, env=self.env)
        if r.returncode != 0:
            return {"error": r.stderr.strip().splitlines()[-1][:300] if r.stderr.strip() else f"exit {r.returncode}"}
        os.replace(os.path.join(output + ".d", "sr.f32"), output)
        return {"ok": True}

    def run(self, key, n):
        r = subprocess.run(self.cmd(self.cases[key], n), capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            return {"error": r.stderr.strip().splitlines()[-1][:300] if r.stderr.strip() else f"exit {r.returncode}"}
        rows = json.loads(r.stdout)
        return {"times_ms": rows[-1]["times_ms"]}

    def close(self):
        pass


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fmt_ms(v, ref):
    if v is None:
        return "–"
    if ref:
        return f"{v:.0f} ({v / ref:.2f})"
    return f"{v:.0f}"


def versions():
    out = []
    for mod, attr in [("onnxruntime", "__version__"), ("openvino", "__version__"), ("ncnn", "__version__"), ("MNN", "version")]:
        try:
            m = __import__(mod)
            v = getattr(m, attr)
            out.append(f"{mod} {v() if callable(v) else v}")
        except Exception:
            out.append(f"{mod} not installed")
    return ", ".join(out)


def make_cases(a):
    """The cases, and each one's input and kdsr-edge output (``kdsr-edge bench --dump``)."""
    sizes = [(64, 64)] if a.quick else [(180, 320), (64, 64)]
    threads = [1] if a.quick else [int(t) for t in a.threads.split(",")]
    if a.quick:
        a.rounds = min(a.rounds, 2)
    m = a.model
    forms = [
        ("dynamic", "student-edge dynamic", m + ".onnx", m + ".onnx", False, sizes),
        ("split-sr", "student-edge split SR", m + "-sr.onnx", m, True, sizes),
    ]
    if a.folded:
        forms.append(("folded", "student-edge folded", a.folded, a.folded, False, sizes))
    if a.student_m:
        forms.append(("student-m", "student-M dynamic (random weights)", a.student_m, a.student_m, False, [(64, 64)]))
    cases = []
    for graph, label, onnx_path, kdsr_model, needs_d, graph_sizes in forms:
        for h, w in graph_sizes:
            inputs = os.path.join(a.dir, "in", f"{graph}-{h}x{w}")
            r = subprocess.run(
                [a.kdsr_edge, "bench", "-m", kdsr_model, "--size", f"{w}x{h}", "--threads", "1", "--iters", "1",
                 "--direct-spatial", "auto", "--no-ide", "--json", "--dump", inputs],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                raise SystemExit(f"kdsr-edge bench --dump on {kdsr_model} failed:\n{r.stderr}")
            for t in threads:
                cases.append({
                    "key": f"{graph}-{h}x{w}-t{t}", "graph": graph, "label": label, "onnx": os.path.abspath(onnx_path),
                    "kdsr_model": kdsr_model, "needs_d": needs_d, "h": h, "w": w, "threads": t,
                    "inputs": os.path.abspath(inputs),
                })
    return {"cases": cases, "versions": versions()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="work folder (inputs, converted graphs, results)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--kdsr-edge", help="the kdsr-edge binary")
    ap.add_argument("--model", default="models/edge/student-edge", help="shipped model prefix (dynamic PREFIX.onnx, split PREFIX-sr.onnx)")
    ap.add_argument("--folded", help="folded student-edge graph")
    ap.add_argument("--student-m", help="dynamic student-M graph (random weights)")
    ap.add_argument("--quick", action="store_true", help="64×64 only, 1 thread, 2 rounds")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=2, help="timed calls per engine, case and round")
    ap.add_argument("--engines", default=",".join(list(KDSR_VARIANTS) + ["onnxruntime", "openvino-f32", "openvino-bf16", "ncnn", "mnn"]))
    ap.add_argument("--out", help="markdown table to write (default DIR/table.md)")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker, a.dir)

    spec = make_cases(a)
    flags = cpu_flags()
    bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    wanted = [e for e in a.engines.split(",") if e]
    if not bf16 and "openvino-bf16" in wanted:
        wanted.remove("openvino-bf16")
        print("openvino-bf16 skipped: the CPU has neither avx512_bf16 nor amx_bf16", file=sys.stderr)
    if "amx_bf16" not in flags and "kdsr-edge-bf16" in wanted:
        wanted.remove("kdsr-edge-bf16")
        print("kdsr-edge-bf16 skipped: the CPU has no amx_bf16", file=sys.stderr)
    engines = {}
    for name in wanted:
        if name in KDSR_VARIANTS:
            engines[name] = KdsrEdge(name, a.kdsr_edge, *KDSR_VARIANTS[name])
        else:
            engines[name] = PyEngine(name, a.dir)

    load_before = loadavg()
    cases = spec["cases"]
    notes = []
    available = {}
    for c in cases:
        key = c["key"]
        ref = os.path.join(c["inputs"], "sr.f32")
        for name, eng in engines.items():
            out = os.path.join(c["inputs"], f"out-{name}.f32")
            r = eng.load(key, c, out)
            if "error" in r:
                notes.append(f"{name} on {c['label']} {c['w']}×{c['h']} t{c['threads']}: {r['error']}")
                print("  " + notes[-1], file=sys.stderr)
                continue
            available[(key, name)] = ref if name == "kdsr-edge" else out
    diffs = {}
    for c in cases:
        base = available.get((c["key"], "onnxruntime"))
        if not base:
            continue
        b = np.fromfile(base, "<f4")
        for name in engines:
            p = available.get((c["key"], name))
            if p and name != "onnxruntime":
                o = np.fromfile(p, "<f4")
                diffs[(c["key"], name)] = float(np.abs(o - b).max()) if o.shape == b.shape else float("inf")

    times = {k: [] for k in available}
    # Each round's block median per engine and case, for the paired ratios.
    per_round = {k: {} for k in available}
    loads = []
    names = list(engines)
    for r in range(a.rounds):
        loads.append(loadavg())
        print(f"round {r + 1}/{a.rounds}, load {loads[-1]}", file=sys.stderr)
        order = names[r % len(names):] + names[: r % len(names)]
        for c in cases:
            for name in order:
                if (c["key"], name) not in times:
                    continue
                res = engines[name].run(c["key"], a.block)
                if "error" in res:
                    notes.append(f"{name} on {c['label']} {c['w']}×{c['h']} t{c['threads']}, round {r + 1}: {res['error']}")
                    print("  " + notes[-1], file=sys.stderr)
                else:
                    times[(c["key"], name)].extend(res["times_ms"])
                    per_round[(c["key"], name)][r] = statistics.median(res["times_ms"])
                time.sleep(PAUSE_S)
    load_after = loadavg()
    for e in engines.values():
        e.close()

    med = {k: statistics.median(v) for k, v in times.items() if v}
    label = {
        "kdsr-edge-tract": "kdsr-edge, tract ops only",
        "kdsr-edge-no-winograd": "kdsr-edge without Winograd",
        "kdsr-edge": "kdsr-edge (default)",
        "kdsr-edge-bf16": "kdsr-edge --precision bf16 (AMX)",
        "onnxruntime": "onnxruntime",
        "openvino-f32": "OpenVINO f32",
        "openvino-bf16": "OpenVINO bf16",
        "ncnn": "ncnn (pnnx)",
        "mnn": "MNN",
    }
    opts = f" --rounds {a.rounds} --block {a.block}" + (" --quick" if a.quick else "")
    if a.out and not a.quick and os.path.normpath(a.out) != os.path.join("benches", "results.md"):
        opts = f" --out {a.out}" + opts
    lines = [
        f"Generated by `bash benches/run.sh{opts}` ({time.strftime('%Y-%m-%d', time.gmtime())}). "
        f"CPU: {cpu_name()}, {os.cpu_count()} CPUs; load average (1/5/15 min) before {load_before}, "
        f"after {load_after}, per round {'; '.join(loads)}. {a.rounds} rounds × {a.block} calls per "
        f"engine and case, engines round-robin; median ms, in brackets the ratio to onnxruntime. "
        f"Versions: {spec.get('versions', '')}.",
    ]

    def table(engines_shown, cell):
        """A markdown table, a row per case, a column per engine: `cell(case, engine)`."""
        rows = [
            "",
            "| graph | LR | threads | " + " | ".join(label.get(n, n) for n in engines_shown) + " |",
            "|" + "---|" * (3 + len(engines_shown)),
        ]
        for c in cases:
            cells = [cell(c, n) for n in engines_shown]
            rows.append(f"| {c['label']} | {c['w']}×{c['h']} | {c['threads']} | " + " | ".join(cells) + " |")
        return rows

    def median_cell(c, n):
        ref = med.get((c["key"], "onnxruntime")) if n != "onnxruntime" else None
        return fmt_ms(med.get((c["key"], n)), ref)

    def paired_cell(c, n):
        base = per_round.get((c["key"], "onnxruntime"), {})
        mine = per_round.get((c["key"], n), {})
        rs = [mine[r] / base[r] for r in sorted(mine) if r in base and base[r] > 0]
        return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "–"

    def diff_cell(c, n):
        d = diffs.get((c["key"], n))
        return "–" if d is None else f"{d:.1e}"

    others = [n for n in names if n != "onnxruntime"]
    lines += table(names, median_cell)
    # The VM's speed can swing within minutes (another tenant's load; up to 2× between
    # processes on 2026-12-06): each round's ratio pairs calls made seconds apart.
    lines += [
        "",
        "Paired by round: the median over rounds of each round's ratio to onnxruntime (the engine's "
        "block median over onnxruntime's in the same round, run seconds apart), in brackets the "
        "lowest and highest round:",
    ]
    lines += table(others, paired_cell)
    # The reduced-precision targets are ratios to the same engine's float32: paired the same way.
    reduced = [
        (num, den, f"{label[num]} / {label[den]}")
        for num, den in [("kdsr-edge-bf16", "kdsr-edge"), ("openvino-bf16", "openvino-f32")]
        if num in names and den in names
    ]
    if reduced:

        def reduced_cell(c, pair):
            num = per_round.get((c["key"], pair[0]), {})
            den = per_round.get((c["key"], pair[1]), {})
            rs = [num[r] / den[r] for r in sorted(num) if r in den and den[r] > 0]
            return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "–"

        lines += [
            "",
            "Reduced precision against the same engine's float32, paired by round: the median over "
            "rounds of each round's ratio of the two block medians, in brackets the lowest and "
            "highest round:",
            "",
            "| graph | LR | threads | " + " | ".join(t for _, _, t in reduced) + " |",
            "|" + "---|" * (3 + len(reduced)),
        ]
        for c in cases:
            cells = [reduced_cell(c, p) for p in reduced]
            lines.append(f"| {c['label']} | {c['w']}×{c['h']} | {c['threads']} | " + " | ".join(cells) + " |")
    lines += ["", "Outputs against onnxruntime's (max |Δ| over the SR image):"]
    lines += table(others, diff_cell)
    if notes:
        lines += ["", "Not measured / failures:", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    out = a.out or os.path.join(a.dir, "table.md")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    with open(os.path.join(a.dir, "times.json"), "w") as f:
        json.dump({f"{k[0]}|{k[1]}": v for k, v in times.items()}, f, indent=1)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
