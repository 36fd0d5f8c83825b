"""The official webknossos client reads a region of a remote layer, ``repeat`` times in one
process; each time it opens the RemoteDataset again and reads. The emulator's request log is
cleared before and counted after each read (control routes are not logged)."""

import json
import os
import sys
import time
import urllib.request

import numpy as np
import webknossos as wk

args = json.loads(sys.argv[1])
log_url = args["log_url"]


def clear_log():
    urllib.request.urlopen(urllib.request.Request(log_url, method="DELETE")).read()


def count_log():
    with urllib.request.urlopen(log_url) as r:
        reqs = json.loads(r.read())
    data = [q for q in reqs if q["path"].startswith("/data/")]
    return len(reqs), len(data)


runs = []
for _ in range(args.get("repeat", 1)):
    clear_log()
    t0 = time.perf_counter()
    ds = wk.RemoteDataset.open(dataset_id=args["dataset_id"])
    mag = ds.get_layer(args["layer"]).get_mag(args["mag"])
    box = wk.BoundingBox(tuple(args["topleft"]), tuple(args["size"]))
    region = mag.read(absolute_bounding_box=box)
    elapsed = time.perf_counter() - t0
    total, data = count_log()
    runs.append(
        {
            "seconds": elapsed,
            "shape": list(region.shape),
            "sum": int(np.asarray(region, dtype=np.int64).sum()),
            "requests": total,
            "data_requests": data,
        }
    )
print("BENCH-RESULT " + json.dumps({"runs": runs, "pid": os.getpid()}))
