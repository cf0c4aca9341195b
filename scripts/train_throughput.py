"""Real training throughput of a run, from its events.jsonl: full batches after the first `skip` of each
epoch, over the wall time between their batch_end records (data path, step, events and command polling
all included; validation and an epoch's short last batch excluded). Prints one JSON line."""
import json, sys


def throughput(path, skip=3):
    records = [json.loads(line) for line in open(path)]
    size = next(r["info"]["config"]["batch_size"] for r in records if r.get("event") == "started")
    by_epoch = {}
    for r in records:
        if r.get("event") == "batch_end":
            by_epoch.setdefault(r["epoch"], []).append(r)
    images = seconds = 0.0
    for recs in by_epoch.values():
        full = [r for r in recs[skip:] if r["batch"] < r["batches"]]
        if len(full) > 1:
            images += size * (len(full) - 1)
            seconds += full[-1]["time"] - full[0]["time"]
    return images / seconds if seconds > 0 else 0.0


if __name__ == "__main__":
    print(json.dumps({"real_train_img_per_s": round(throughput(sys.argv[1]), 2)}))
