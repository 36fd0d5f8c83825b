"""Open the sample NWB file with pynwb, from a path (the mount), a URL (remfile) or
neurofs:// (neurofs.fsspec, ``options`` its storage options).

NWBHDF5IO(..., load_namespaces=True).read(), then one slice of the ElectricalSeries data.
"""

import json
import sys
import time

import h5py
import numpy as np
from pynwb import NWBHDF5IO

args = json.loads(sys.argv[1])
target = args["target"]
rows = args.get("rows", [0, 10000])

result = {"mode": "pynwb"}
if args["source"] == "fsspec":
    import fsspec

    # Made before the clock starts, as a mount is mounted before: its sources and cache.
    fs = fsspec.filesystem("neurofs", **args["options"])
t0 = time.perf_counter()
if args["source"] == "url":
    import remfile

    cache = remfile.DiskCache(args["disk_cache"]) if args.get("disk_cache") else None
    fileobj = remfile.File(target, disk_cache=cache)
    h5 = h5py.File(fileobj, "r")
elif args["source"] == "fsspec":
    h5 = h5py.File(fs.open(target), "r")
else:
    h5 = h5py.File(target, "r")

io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
nwb = io.read()
data = nwb.acquisition["ElectricalSeries"].data[rows[0] : rows[1]]
result["objects"] = len(nwb.objects)
elapsed = time.perf_counter() - t0
result["seconds"] = elapsed
result["slice_shape"] = list(data.shape)
result["slice_sum"] = int(np.asarray(data, dtype=np.int64).sum())
h5.close()
print("BENCH-RESULT " + json.dumps(result))
