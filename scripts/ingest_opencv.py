"""The article's ingest loop, for the ingest figure: cv2.imread then cv2.resize to SIZE, one file at a
time, every image under ROOT. Prints one JSON line. Needs opencv-python-headless (scripts/bench.sh
installs it into .venv when missing). Usage: ingest_opencv.py ROOT [SIZE]"""
import json, os, sys, time

import cv2

root = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 150
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith((".jpg", ".jpeg", ".png")))
t = time.perf_counter()
n = 0
for p in paths:
    img = cv2.imread(p)
    if img is not None:
        cv2.resize(img, (size, size))
        n += 1
s = time.perf_counter() - t
print(json.dumps({"impl": "opencv-loop", "images": n, "size": size, "seconds": round(s, 3), "ingest_img_per_s": round(n / s, 1)}))
