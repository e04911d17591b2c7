"""A function reads one JSON request on stdin and writes one JSON response on stdout."""
import json
import os
import sys

request = json.load(sys.stdin)
name = request["input"].get("name") or "World"
print(json.dumps({
    "success": True,
    "output": {
        "message": f"Hello, {name}! (from Python)",
        "runtime": "python",
        "ran_from": "source",
        "mode": os.environ.get("ALYX_MODE"),
    },
}))
