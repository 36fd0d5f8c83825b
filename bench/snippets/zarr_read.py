"""zarr-python reads a region of an OME-Zarr array on the mount, or at a neurofs:// URL with
its ``storage_options`` (axes z, y, x)."""

import json
import sys
import time

import numpy as np
import zarr

args = json.loads(sys.argv[1])
(z0, z1), (y0, y1), (x0, x1) = args["zyx"]
if args.get("storage_options"):
    import fsspec

    # Made before the clock starts, as a mount is mounted before: its sources and cache.
    fsspec.filesystem("neurofs", **args["storage_options"])
t0 = time.perf_counter()
array = zarr.open_array(args["path"], mode="r", storage_options=args.get("storage_options"))
region = array[z0:z1, y0:y1, x0:x1]
elapsed = time.perf_counter() - t0
print(
    "BENCH-RESULT "
    + json.dumps(
        {
            "seconds": elapsed,
            "shape": list(region.shape),
            "sum": int(np.asarray(region, dtype=np.int64).sum()),
            "zarr": zarr.__version__,
        }
    )
)
