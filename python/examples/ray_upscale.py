#!/usr/bin/env python3
"""Upscale a folder of images x4 with kdsr on a Ray cluster (Ray Data), one PNG per input.

    python ray_upscale.py photos/ photos-x4/ --threads 1            # a local Ray on this machine
    python ray_upscale.py /mnt/nfs/photos /mnt/nfs/photos-x4 --address auto   # an existing cluster

What it does: lists the folder's images as `kdsr-edge upscale -i DIR` does (PNG, JPEG, WebP, TIFF,
PNM/PAM by extension, case-insensitive, not recursive), reads them with
`ray.data.read_images(..., mode="RGB", include_paths=True)` (one image per block), and maps them
through a pool of actors (`--workers`, each holding `--threads` CPUs and one `kdsr.Upscaler`,
loaded once). Each actor writes `OUT/<stem>.png` itself (a temporary file in OUT, renamed into
place: no partial outputs), so OUT must be a folder every node sees at the same path (NFS, a
shared mount). The names and pixels are those of `kdsr-edge upscale -i DIR -o OUT/ --format png`
for 8-bit RGB inputs that Pillow and the CLI decode to the same pixels (PNG: tested), EXIF
orientation applied as the CLI applies it.

What differs from the CLI, from read_images(mode="RGB") and Pillow doing the decoding:
  * 16-bit RGB(A) inputs are read as 8 bits, gray inputs as RGB and alpha is dropped: the
    outputs are 8-bit RGB PNGs (the CLI keeps 16 bits, gray and alpha). 16-bit gray inputs,
    which Pillow's conversion to RGB clips to 255, are refused (reported as failed). Use the CLI
    for those.
  * JPEGs are decoded by Pillow (libjpeg-turbo), not by the CLI's decoder, and the two decode
    differently: the outputs differed from the CLI's by up to 3 levels on the JPEGs tried.
  * The ICC profile and EXIF are not copied (the CLI's `--strip`).
A file that cannot be read or upscaled is reported at the end and the script exits 1 (the others
are still written), like a CLI folder run.

Prints, at the end: images, wall time, images/s and images/s per CPU (the CPUs the actors hold).
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

# kdsr-edge's folder listing (runtime/src/io.rs IMAGE_EXTENSIONS).
IMAGE_EXTENSIONS = {
    "png", "jpg", "jpeg", "jfif", "webp", "tif", "tiff", "pnm", "ppm", "pgm", "pbm", "pam",
}


def list_images(folder):
    """The image files of `folder`, sorted by name, as kdsr-edge lists a folder."""
    return sorted(
        e.path
        for e in os.scandir(folder)
        if e.is_file() and os.path.splitext(e.name)[1][1:].lower() in IMAGE_EXTENSIONS
    )


def output_name(path):
    return os.path.splitext(os.path.basename(path))[0] + ".png"


def upright(frame, path):
    """`frame` (as read_images gives it, EXIF orientation not applied) turned as the file's EXIF
    orientation says, as kdsr-edge and ImageOps.exif_transpose turn it. Reads only the header.
    Refuses 16-bit gray (and 32-bit) images, which Pillow's convert("RGB") clips to 255."""
    from PIL import Image

    with Image.open(path) as im:
        orientation = im.getexif().get(0x0112, 1)
        if im.mode.startswith("I") or im.mode == "F":
            raise ValueError(
                f"{im.mode} image: read_images(mode='RGB') clips it to 255; upscale it with "
                "kdsr-edge (or kdsr.Upscaler on the 16-bit frame)"
            )
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    if method is None:
        return frame
    return np.asarray(Image.fromarray(frame).transpose(method))


def write_png(array, dest):
    """`array` as a PNG at `dest`: written to a temporary file beside it (named as kdsr-edge
    names its own), synced, then renamed over `dest`; removed on any failure."""
    from PIL import Image

    folder, name = os.path.split(dest)
    fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.kdsr-tmp.{os.getpid()}.")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(array).save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Upscale:
    """One per actor: the model is loaded once, then each batch's images are upscaled and
    written. Returns, per image, its path, output, seconds (wall and this process's CPU) and
    error ("" when none)."""

    def __init__(self, out_dir, model, threads, mem_budget_mib):
        import kdsr

        self.out_dir = out_dir
        self.up = kdsr.Upscaler(model=model, threads=threads, mem_budget_mib=mem_budget_mib)

    def __call__(self, batch):
        rows = {"path": [], "output": [], "seconds": [], "cpu_seconds": [], "error": []}
        for frame, path in zip(batch["image"], batch["path"]):
            start, cpu = time.perf_counter(), time.process_time()
            dest = os.path.join(self.out_dir, output_name(path))
            error = ""
            try:
                write_png(self.up.upscale(upright(np.asarray(frame), path)), dest)
            except Exception as e:  # reported by the driver; the other images go on
                error = f"{type(e).__name__}: {e}"
            rows["path"].append(path)
            rows["output"].append(dest)
            rows["seconds"].append(time.perf_counter() - start)
            rows["cpu_seconds"].append(time.process_time() - cpu)
            rows["error"].append(error)
        return {k: np.array(v) for k, v in rows.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="folder of images (not recursive)")
    p.add_argument("output", help="folder for the PNGs (created if missing)")
    p.add_argument("-m", "--model", help="model as kdsr.Upscaler takes it (default: built in)")
    p.add_argument("-j", "--threads", type=int, default=1, help="tract threads per worker (1)")
    p.add_argument(
        "-w",
        "--workers",
        type=int,
        default=0,
        help="actors, each holding --threads CPUs (0: the cluster's CPUs // --threads)",
    )
    p.add_argument("--mem-budget", type=int, default=512, help="MiB per image, per worker (512)")
    p.add_argument(
        "--address",
        help="an existing cluster: `auto` (this node is part of it) or ray://HEAD:10001; "
        "default: start a local Ray",
    )
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error("--threads must be at least 1 (the actor reserves that many CPUs)")

    src, out = os.path.abspath(a.input), os.path.abspath(a.output)
    files = list_images(src)
    if not files:
        p.error(f"no images in {src}")
    names = {}
    for f in files:
        names.setdefault(output_name(f), []).append(f)
    clash = {n: fs for n, fs in names.items() if len(fs) > 1}
    if clash:
        p.error(f"inputs with the same name would write the same PNG: {clash}")
    if os.path.realpath(src) == os.path.realpath(out):
        p.error("the output folder is the input folder: the PNGs could overwrite inputs")
    os.makedirs(out, exist_ok=True)

    import ray

    if not ray.is_initialized():
        ray.init(address=a.address, num_cpus=a.num_cpus)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = a.workers or max(1, cpus // a.threads)
    print(
        f"{len(files)} images, {workers} workers x {a.threads} thread(s) "
        f"on {cpus} CPUs of {len(ray.nodes())} node(s)",
        file=sys.stderr,
    )

    # A file that cannot be read fails its block only (one image per block): the others go on,
    # and it is reported below as not read.
    ray.data.DataContext.get_current().max_errored_blocks = -1
    start = time.perf_counter()
    ds = ray.data.read_images(
        files,
        mode="RGB",
        include_paths=True,
        file_extensions=None,  # listed above, as the CLI lists them
        override_num_blocks=len(files),  # one image per block: any actor takes any image
        # Decoding is light next to upscaling: the readers hold no CPU (the actors hold them
        # all), and there are few of them (each is a Python worker process to start).
        num_cpus=0,
        concurrency=max(1, workers // 4),
    ).map_batches(
        Upscale,
        fn_constructor_args=(out, a.model, a.threads, a.mem_budget),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=a.threads,
    )
    rows = ds.take_all()
    wall = time.perf_counter() - start

    done = [r for r in rows if not r["error"]]
    failed = {r["path"]: r["error"] for r in rows if r["error"]}
    seen = {r["path"] for r in rows}
    failed.update({f: "not read" for f in files if f not in seen})
    for path, error in sorted(failed.items()):
        print(f"{path}: {error}", file=sys.stderr)
    n, n_cpus = max(len(done), 1), workers * a.threads
    busy = sum(r["seconds"] for r in done) / n
    cpu = sum(r["cpu_seconds"] for r in done) / n
    print(
        f"{len(done)} images in {wall:.2f} s: {len(done) / wall:.3f} images/s, "
        f"{len(done) / wall / n_cpus:.3f} images/s per CPU ({n_cpus} CPUs); "
        f"per image in the workers {busy:.3f} s, {cpu:.3f} s of CPU"
    )
    if failed:
        print(f"{len(failed)} of {len(files)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
