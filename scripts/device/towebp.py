"""Writes data/T91 and data/BSD200 as lossless WebP into .dev/data/ (scripts/device/kit.sh) and
checks every file decodes to the same pixels; a file already there and identical is kept.
Prints how many files were (re)written and how many there are."""
import glob
import os
from multiprocessing import Pool

from PIL import Image


def same(path, im):
    try:
        return Image.open(path).convert(im.mode).tobytes() == im.tobytes()
    except (OSError, ValueError):
        return False


def one(png):
    im = Image.open(png)
    im.load()
    folder = os.path.basename(os.path.dirname(png))
    out = f".dev/data/{folder}/{os.path.basename(png)[:-4]}.webp"
    if os.path.exists(out) and same(out, im):
        return 0
    im.save(out, lossless=True, quality=70, method=4)
    assert same(out, im), f"{out} does not decode to the pixels of {png}"
    return 1


if __name__ == "__main__":
    files = sorted(glob.glob("data/T91/*.png")) + sorted(glob.glob("data/BSD200/*.png"))
    with Pool(2) as pool:
        print(sum(pool.map(one, files)), len(files))
