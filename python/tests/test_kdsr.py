"""The `kdsr` Python package against the `kdsr-edge` CLI on the same frames (issue 16 item 2).

Run by `bash scripts/test.sh` after `maturin develop` into the project's .venv; on its own:
`.venv/bin/python -m pytest python/tests`. Needs the release or test-profile `kdsr-edge` that
scripts/test.sh builds (KDSR_EDGE, default target/debug/kdsr-edge) for the CLI comparisons.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

import kdsr

ROOT = pathlib.Path(__file__).resolve().parents[2]
BABY = ROOT / "data" / "Set5" / "baby.png"


def edge_binary():
    exe = pathlib.Path(os.environ.get("KDSR_EDGE", ROOT / "target" / "debug" / "kdsr-edge"))
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    return exe


@pytest.fixture(scope="module")
def frame():
    """A 64x80 RGB uint8 frame, as picamera2's capture_array('main') gives (H x W x 3)."""
    img = Image.open(BABY).convert("RGB").crop((200, 200, 280, 264))
    return np.asarray(img)


@pytest.fixture(scope="module")
def up():
    return kdsr.Upscaler(threads=1)


def cli_upscale(tmp_path, arr, *extra):
    src = tmp_path / "in.png"
    dst = tmp_path / "out.png"
    Image.fromarray(arr).save(src)
    subprocess.run(
        [str(edge_binary()), "upscale", "-i", str(src), "-o", str(dst), "-j", "1", "-q", *extra],
        check=True,
        cwd=ROOT,
    )
    return np.asarray(Image.open(dst))


def test_default_model_is_the_clis_and_output_equals_the_cli(up, frame, tmp_path):
    assert up.scale == 4
    assert "student-edge-camera" in up.model
    out = up.upscale(frame)
    assert out.dtype == np.uint8 and out.shape == (4 * 64, 4 * 80, 3)
    np.testing.assert_array_equal(out, cli_upscale(tmp_path, frame))


def test_one_idr_for_many_frames_equals_the_cli_with_that_idr(up, frame, tmp_path):
    idr = up.estimate_idr(frame)
    assert idr.d.dtype == np.float32 and idr.d.shape == (32,)
    assert idr.d_prime.shape == (128,)
    path = tmp_path / "camera.idr"
    idr.save(str(path))
    again = kdsr.Idr.load(str(path))
    np.testing.assert_array_equal(again.d, idr.d)
    # A second frame of the same camera, upscaled with the first frame's IDR.
    other = np.ascontiguousarray(frame[:, ::-1])
    out = up.upscale_with_idr(other, again)
    np.testing.assert_array_equal(out, cli_upscale(tmp_path, other, "--idr", str(path)))
    # The IDR is used: that of a noisy frame gives another output.
    rng = np.random.default_rng(0)
    noisy = np.clip(frame + rng.normal(0, 20, frame.shape), 0, 255).astype(np.uint8)
    assert not np.array_equal(out, up.upscale_with_idr(other, up.estimate_idr(noisy)))


def test_gray_16_bit_alpha_and_float_frames(up, frame):
    gray = frame[..., 1]
    out = up.upscale(gray)
    assert out.shape == (256, 320) and out.dtype == np.uint8
    deep = frame.astype(np.uint16) * 257
    out16 = up.upscale(deep)
    assert out16.dtype == np.uint16 and out16.shape == (256, 320, 3)
    rgba = np.dstack([frame, np.full(frame.shape[:2], 200, np.uint8)])
    out4 = up.upscale(rgba)
    assert out4.shape == (256, 320, 4)
    f = up.upscale(frame.astype(np.float32) / 255.0)
    assert f.dtype == np.float32 and f.shape == (256, 320, 3)
    assert f.min() >= 0.0 and f.max() <= 1.0
    # The float path and the 8-bit path agree to within the 8-bit rounding.
    assert np.abs(f * 255.0 - up.upscale(frame)).max() <= 0.5 + 1e-3


def test_a_non_contiguous_view_is_upscaled_like_its_copy(up, frame):
    view = frame[::2, ::2]
    np.testing.assert_array_equal(up.upscale(view), up.upscale(np.ascontiguousarray(view)))


def test_errors_are_python_exceptions_with_the_runtimes_message(up, frame, tmp_path):
    with pytest.raises(ValueError, match="H x W"):
        up.upscale(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8, uint16 or float32"):
        up.upscale(np.zeros((8, 8, 3), np.int64))
    with pytest.raises(kdsr.KdsrError, match="no-such-model"):
        kdsr.Upscaler(model=str(tmp_path / "no-such-model"))
    bad = tmp_path / "bad.idr"
    bad.write_bytes(b"not an idr")
    with pytest.raises(kdsr.KdsrError, match="bad.idr"):
        kdsr.Idr.load(str(bad))
    # An IDR of other weights (the Gaussian-only model's) is refused.
    gauss = kdsr.Upscaler(model=str(ROOT / "models" / "edge" / "student-edge"), threads=1)
    with pytest.raises(kdsr.KdsrError, match="weights"):
        up.upscale_with_idr(frame, gauss.estimate_idr(frame))
