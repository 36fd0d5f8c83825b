"""zarr-python over fsspec/s3fs reads a region of a zarr array straight from the object store
(anonymous, ``endpoint_url`` at the emulator's bucket; axes z, y, x). Counts the requests it
made from the emulator's request log when ``log_url`` is given."""

import json
import sys
import time
import urllib.request

import numpy as np
import s3fs
import zarr

args = json.loads(sys.argv[1])
(z0, z1), (y0, y1), (x0, x1) = args["zyx"]


def log_count() -> int:
    if not args.get("log_url"):
        return 0
    with urllib.request.urlopen(args["log_url"]) as r:
        return len(json.load(r))


runs = []
for _ in range(args.get("repeat", 1)):
    before = log_count()
    t0 = time.perf_counter()
    # A new filesystem each run: s3fs caches listings per instance (skip_instance_cache).
    fs = s3fs.S3FileSystem(
        anon=True,
        client_kwargs={"endpoint_url": args["endpoint_url"]},
        skip_instance_cache=True,
        asynchronous=True,
    )
    store = zarr.storage.FsspecStore(fs, path=args["path"], read_only=True)
    array = zarr.open_array(store, mode="r")
    region = array[z0:z1, y0:y1, x0:x1]
    elapsed = time.perf_counter() - t0
    runs.append(
        {
            "seconds": elapsed,
            "shape": list(region.shape),
            "sum": int(np.asarray(region, dtype=np.int64).sum()),
            "requests": log_count() - before,
        }
    )
print(
    "BENCH-RESULT " + json.dumps({"runs": runs, "zarr": zarr.__version__, "s3fs": s3fs.__version__})
)
