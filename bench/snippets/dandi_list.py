"""The official dandi client lists every asset of a version (path, size, modified)."""

import json
import sys
import time

from dandi.dandiapi import DandiAPIClient

args = json.loads(sys.argv[1])
t0 = time.perf_counter()
client = DandiAPIClient(args["api_url"])
dandiset = client.get_dandiset(args["dandiset"], args["version"])
rows = [(a.path, a.size, a.modified) for a in dandiset.get_assets()]
elapsed = time.perf_counter() - t0
client.session.close()
print("BENCH-RESULT " + json.dumps({"seconds": elapsed, "assets": len(rows)}))
