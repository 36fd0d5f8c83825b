"""The first rows of a table through the mount: ``head -5`` of its first file, or pandas
``read_csv(nrows=…)`` of it (``what``), timed."""

import json
import subprocess
import sys
import time

import pandas as pd

args = json.loads(sys.argv[1])
t0 = time.perf_counter()
if args["what"] == "head":
    out = subprocess.run(["head", "-5", args["path"]], capture_output=True, text=True, check=True)
    rows = len(out.stdout.splitlines()) - 1
    first_id = int(out.stdout.splitlines()[1].split(",", 1)[0])
else:
    frame = pd.read_csv(args["path"], nrows=args["nrows"])
    rows, first_id = len(frame), int(frame["id"].min())
seconds = time.perf_counter() - t0
print("BENCH-RESULT " + json.dumps({"seconds": seconds, "rows": rows, "first_id": first_id}))
