"""The official caveclient reads the first rows of a table: ``query_table(limit=…)`` for each
limit asked, each timed on its own (a new ``CAVEclient`` each time: nothing is reused)."""

import json
import os
import sys
import time

from caveclient import CAVEclient

args = json.loads(sys.argv[1])
runs = []
for limit in args["limits"]:
    t0 = time.perf_counter()
    client = CAVEclient(
        args["datastack"],
        server_address=args["url"],
        auth_token=args["token"],
        write_server_cache=False,
    )
    frame = client.materialize.query_table(args["table"], limit=limit, split_positions=True)
    runs.append(
        {
            "limit": limit,
            "seconds": time.perf_counter() - t0,
            "rows": len(frame),
            "first_id": int(frame["id"].min()),
        }
    )
print("BENCH-RESULT " + json.dumps({"runs": runs, "home": os.environ.get("HOME", "")}))
