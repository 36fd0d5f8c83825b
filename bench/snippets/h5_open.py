"""Open the sample NWB file and walk it, from a path (the mount) or a URL (remfile).

mode "pynwb": NWBHDF5IO(...).read(), then one slice of the ElectricalSeries data.
mode "h5py":  h5py.File, visit every group and dataset, read every attribute, then one slice.
"""

import json
import sys
import time

import h5py
import numpy as np

args = json.loads(sys.argv[1])
mode = args["mode"]
target = args["target"]
rows = args.get("rows", [0, 10000])
series = "/acquisition/ElectricalSeries/data"

result = {"mode": mode}
t0 = time.perf_counter()
if args["source"] == "url":
    import remfile

    cache = remfile.DiskCache(args["disk_cache"]) if args.get("disk_cache") else None
    fileobj = remfile.File(target, disk_cache=cache)
    h5 = h5py.File(fileobj, "r")
else:
    h5 = h5py.File(target, "r")

if mode == "pynwb":
    from pynwb import NWBHDF5IO

    io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
    nwb = io.read()
    data = nwb.acquisition["ElectricalSeries"].data[rows[0] : rows[1]]
    result["objects"] = len(nwb.objects)
else:
    counts = {"groups": 0, "datasets": 0, "attributes": 0}

    def visit(name, obj):
        counts["groups" if isinstance(obj, h5py.Group) else "datasets"] += 1
        for value in obj.attrs.values():
            _ = value
            counts["attributes"] += 1

    for _value in h5.attrs.values():
        counts["attributes"] += 1
    h5.visititems(visit)
    data = h5[series][rows[0] : rows[1]]
    result.update(counts)
elapsed = time.perf_counter() - t0
result["seconds"] = elapsed
result["slice_shape"] = list(data.shape)
result["slice_sum"] = int(np.asarray(data, dtype=np.int64).sum())
h5.close()
print("BENCH-RESULT " + json.dumps(result))
