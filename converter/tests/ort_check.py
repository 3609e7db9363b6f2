#!/usr/bin/env python3
"""Runs every exported ONNX graph in a folder with onnxruntime (CPU) and compares its outputs with
the outputs tract produced, written by `cargo test -p kdsr-converter --test ort_cases`.

For each NAME.onnx that has NAME.inputs.safetensors (inputs, named after the graph inputs) and
NAME.tract.safetensors (tract's outputs, named after the graph outputs) beside it, runs the graph
and checks max |onnxruntime - tract| <= 1e-4 on every output, or <= the "tolerance" of
NAME.check.json when that file exists (int8 graphs: a few activation quantization steps, since
the two runtimes may round a value near a half step differently). Prints one line per graph,
then `ort: N passed, M failed`. Exit status: 0 when every graph passed, 1 when any failed, 2 when the
folder holds no graph to check.

An int8 graph (one whose NAME.check.json has "integer_kernels") is run twice:
- with graph optimizations off, where onnxruntime computes the QDQ graph as ONNX defines it
  (DequantizeLinear → float op → QuantizeLinear): always checked;
- with them on, where onnxruntime fuses the QDQ pairs into QLinearConv / QLinearAdd / … on its
  integer kernels: checked unless "integer_kernels" is "vnni" and this is an x86-64 CPU without
  VNNI. There onnxruntime's u8×s8 kernels (vpmaddubsw) saturate 16-bit pair sums of full-range
  int8 weights (onnxruntime's quantization docs; on an AMD Zen 3 this script printed 4.0e-2
  for tiny-int8-sr fused, 1.55e-3 unfused), which is onnxruntime's limit, not the graph's; the graphs exported with --reduce-range (7-bit weights, "integer_kernels": "any")
  are checked on every CPU instead.

Usage: python converter/tests/ort_check.py [FOLDER]   (default: target/ort-check)
Needs: pip install onnxruntime==1.32.0 numpy safetensors (the version scripts/test.sh pins)
"""

import json
import pathlib
import platform
import sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

TOLERANCE = 1e-4


def sidecar_for(model: pathlib.Path) -> dict:
    """NAME.check.json beside NAME.onnx, else {}."""
    sidecar = model.with_name(model.name[: -len(".onnx")] + ".check.json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


def has_vnni() -> bool:
    """True unless this is an x86-64 CPU without AVX512-VNNI or AVX-VNNI (Linux /proc/cpuinfo)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def check(
    model: pathlib.Path,
    inputs: pathlib.Path,
    tract: pathlib.Path,
    tolerance: float,
    optimize: bool = True,
) -> tuple[bool, str]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    feeds = load_file(str(inputs))
    want = load_file(str(tract))
    names = [o.name for o in sess.get_outputs()]
    missing = [i.name for i in sess.get_inputs() if i.name not in feeds]
    if missing:
        return False, f"inputs missing from {inputs.name}: {missing}"
    got = sess.run(names, {i.name: feeds[i.name] for i in sess.get_inputs()})
    ok, parts = True, []
    for name, value in zip(names, got):
        if name not in want:
            ok = False
            parts.append(f"{name}: not in {tract.name}")
            continue
        ref = want[name]
        if value.shape != ref.shape:
            ok = False
            parts.append(f"{name}: shape {list(value.shape)} vs tract {list(ref.shape)}")
            continue
        diff = float(np.max(np.abs(value.astype(np.float64) - ref.astype(np.float64))))
        if not np.isfinite(diff) or diff > tolerance:
            ok = False
        parts.append(f"{name} {list(value.shape)} max|d| {diff:.2e}")
    if tolerance != TOLERANCE:
        parts.append(f"tolerance {tolerance:.2e}")
    return ok, ", ".join(parts)


def main() -> int:
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/ort-check")
    passed = failed = 0
    for model in sorted(folder.glob("*.onnx")):
        stem = model.name[: -len(".onnx")]
        inputs = model.with_name(stem + ".inputs.safetensors")
        tract = model.with_name(stem + ".tract.safetensors")
        if not (inputs.is_file() and tract.is_file()):
            continue
        side = sidecar_for(model)
        tolerance = float(side.get("tolerance", TOLERANCE))
        kernels = side.get("integer_kernels")
        try:
            if kernels is None:
                ok, detail = check(model, inputs, tract, tolerance)
            else:
                ok, ref = check(model, inputs, tract, tolerance, optimize=False)
                fused_ok, fused = check(model, inputs, tract, tolerance)
                if kernels == "vnni" and not has_vnni():
                    fused = f"not asserted: x86-64 without VNNI, u8s8 kernels saturate: {fused}"
                else:
                    ok = ok and fused_ok
                detail = f"unfused: {ref}; integer kernels ({kernels}): {fused}"
        except Exception as e:  # a graph onnxruntime cannot load or run is a failure
            ok, detail = False, f"{type(e).__name__}: {e}"
        print(f"{'PASS' if ok else 'FAIL'} {model.name}: {detail}")
        passed += ok
        failed += not ok
    print(f"ort: {passed} passed, {failed} failed")
    if failed:
        return 1
    if passed == 0:
        print(f"no NAME.onnx with NAME.inputs/.tract.safetensors in {folder}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
