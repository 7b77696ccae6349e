"""A child process for tests/test_kill_resume.py: a small resumable training, which the test kills.

    python tests/resume_driver.py STATE OUT [--hang-in-save N]

It trains notebook 04's train_model with a state file for 3 epochs on test_resume.py's toy task, printing
"step N" after each optimizer step, and writes the final weights to OUT. With --hang-in-save N,
the N-th state save of this process writes half its bytes and then waits to be killed.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import helpers  # noqa: E402
from kit_support import make_glove, make_model  # noqa: E402
from test_resume import loaders  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("state")
ap.add_argument("out")
ap.add_argument("--hang-in-save", type=int, default=0)
args = ap.parse_args()
torch.set_num_threads(1)

step, saves = helpers.train_step, []


def counted_step(*a, **kw):
    loss = step(*a, **kw)
    counted_step.n += 1
    print(f"step {counted_step.n}", flush=True)
    return loss


counted_step.n = 0
helpers.train_step = counted_step

if args.hang_in_save:
    save = torch.save

    def hanging_save(obj, f, *a, **kw):
        saves.append(f)
        if len(saves) == args.hang_in_save:
            save(obj, f, *a, **kw)
            Path(f).write_bytes(Path(f).read_bytes()[: Path(f).stat().st_size // 2])  # half written...
            print("saving", flush=True)
            time.sleep(600)  # ...and killed here
        return save(obj, f, *a, **kw)

    torch.save = hanging_save

model = make_model(make_glove(), seed=0)
torch.manual_seed(1)
history = helpers.train_model(model, *loaders(), 3, 1e-2, torch.device("cpu"), state_file=Path(args.state))
torch.save(dict(weights=model.state_dict(), history=history), args.out)
print("done", flush=True)
