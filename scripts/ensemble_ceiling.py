"""How far averaging several runs' test predictions gets on one split: an estimate of the accuracy
that lower variance alone could buy. Reads the last test `predictions` record of each run's
events.jsonl (with the run's own test-time augmentation). The runs must share a split (same data,
seed and near-duplicate threshold); runs whose test images differ are refused.

    ensemble_ceiling.py RUN_DIR RUN_DIR [...]

Prints each run's accuracy, how many test images every run gets wrong, the ensemble of all runs
(mean of the class probabilities) and the range over pairs. One JSON object."""
import itertools
import json
import os
import sys
from pathlib import PurePath


def test_predictions(run):
    last = None
    path = os.path.join(run, "events.jsonl")
    try:
        with open(path) as f:
            for line in f:
                if '"event":"predictions"' in line and '"split":"test"' in line:
                    last = json.loads(line)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: cannot read: {e}")
    if last is None:
        sys.exit(f"{run}: no test predictions in events.jsonl (did the run finish?)")
    # Runs started from different folders name the same image differently (../data/… against
    # /home/…/data/…): an image is its split folder, class folder and file name.
    return {os.path.join(*PurePath(i["path"]).parts[-3:]): (i["truth"], i["pred"], i["probs"]) for i in last["items"]}


def accuracy(runs, names):
    first = runs[names[0]]
    right = 0
    for image, (truth, _, p) in first.items():
        probs = [sum(runs[n][image][2][c] for n in names) for c in range(len(p))]
        right += max(range(len(probs)), key=probs.__getitem__) == truth
    return right / len(first)


def main(dirs):
    if len(dirs) < 2:
        sys.exit(__doc__)
    runs = {d: test_predictions(d) for d in dirs}
    images = set(runs[dirs[0]])
    for d in dirs[1:]:
        if set(runs[d]) != images:
            sys.exit(f"{d}: its test images differ from {dirs[0]}'s (another seed or split)")
    always_wrong = [i for i in sorted(images) if all(runs[d][i][1] != runs[d][i][0] for d in dirs)]
    pairs = [accuracy(runs, list(p)) for p in itertools.combinations(dirs, 2)]
    print(json.dumps({
        "test_images": len(images),
        "runs": {d: round(accuracy(runs, [d]), 4) for d in dirs},
        "wrong_in_every_run": always_wrong,
        "ensemble_of_all": round(accuracy(runs, dirs), 4),
        "pairs_min_median_max": [round(x, 4) for x in (min(pairs), sorted(pairs)[len(pairs) // 2], max(pairs))],
    }, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
