from PIL import Image
import glob, os, sys
from multiprocessing import Pool
def one(f):
    d = os.path.basename(os.path.dirname(f))
    im = Image.open(f); im.load()
    out = f".dev/data/{d}/" + os.path.basename(f)[:-4] + ".webp"
    if os.path.exists(out) and os.path.getsize(out) > 0:
      try:
        back = Image.open(out).convert(im.mode)
        if back.tobytes() == im.tobytes(): return 0
      except Exception: pass
    im.save(out, lossless=True, quality=70, method=4)
    back = Image.open(out).convert(im.mode)
    assert back.tobytes() == im.tobytes(), f
    return 1
fs = sorted(glob.glob("data/T91/*.png")) + sorted(glob.glob("data/BSD200/*.png"))
with Pool(2) as p: print(sum(p.map(one, fs)), len(fs))
