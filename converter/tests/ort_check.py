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

Usage: python converter/tests/ort_check.py [FOLDER]   (default: target/ort-check)
Needs: pip install onnxruntime numpy safetensors
"""

import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

TOLERANCE = 1e-4


def tolerance_for(model: pathlib.Path) -> float:
    """The tolerance of NAME.check.json beside NAME.onnx, else TOLERANCE."""
    sidecar = model.with_name(model.name[: -len(".onnx")] + ".check.json")
    if sidecar.is_file():
        return float(json.loads(sidecar.read_text())["tolerance"])
    return TOLERANCE


def check(
    model: pathlib.Path, inputs: pathlib.Path, tract: pathlib.Path, tolerance: float
) -> tuple[bool, str]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
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
        try:
            ok, detail = check(model, inputs, tract, tolerance_for(model))
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
