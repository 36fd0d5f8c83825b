"""zarr-python reads a region of an OME-Zarr array on the mount (axes z, y, x)."""

import json
import sys
import time

import numpy as np
import zarr

args = json.loads(sys.argv[1])
(z0, z1), (y0, y1), (x0, x1) = args["zyx"]
t0 = time.perf_counter()
array = zarr.open_array(args["path"], mode="r")
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
