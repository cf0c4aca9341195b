"""Real training throughput of a run, from its events.jsonl: full batches after the first `skip` of each
epoch, over the wall time between their batch_end records (data path, step, events and command polling
all included; validation and an epoch's short last batch excluded). Prints one JSON line.

    train_throughput.py EVENTS [AFTER]

AFTER (unix seconds): count only batches that ended after it, and list the run's thread changes."""
import json, sys


def throughput(path, skip=3, after=0.0):
    records = [json.loads(line) for line in open(path)]
    size = next(r["info"]["config"]["batch_size"] for r in records if r.get("event") == "started")
    by_epoch = {}
    for r in records:
        if r.get("event") == "batch_end" and r["time"] >= after:
            by_epoch.setdefault(r["epoch"], []).append(r)
    images = seconds = 0.0
    for recs in by_epoch.values():
        full = [r for r in recs[skip:] if r["batch"] < r["batches"]]
        if len(full) > 1:
            images += size * (len(full) - 1)
            seconds += full[-1]["time"] - full[0]["time"]
    return images / seconds if seconds > 0 else 0.0


if __name__ == "__main__":
    if len(sys.argv) > 2:
        after = float(sys.argv[2])
        changes = [(r["from"], r["to"], round(r["busy_elsewhere"], 2))
                   for r in map(json.loads, open(sys.argv[1])) if r.get("event") == "threads_changed"]
        print(json.dumps({"real_train_img_per_s": round(throughput(sys.argv[1], 0, after), 2), "threads_changed": changes}))
    else:
        print(json.dumps({"real_train_img_per_s": round(throughput(sys.argv[1]), 2)}))
