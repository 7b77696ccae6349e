"""SIGKILL during training, and again during the state save: the next run carries on, and ends exactly
where an unbroken run ends, with no half-written file left behind.

A real child process (tests/resume_driver.py) runs notebook 04's train_model with a state file; the test
kills it with SIGKILL, which no Python code can catch or clean up after.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DRIVER = Path(__file__).resolve().parent / "resume_driver.py"
STEPS_PER_EPOCH = 6  # test_resume.loaders: 96 texts in batches of 16

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def start(state, out, *flags):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(DRIVER), str(state), str(out), *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)


def kill_when(proc, line: str) -> list:
    """Read the child's output until `line`, then SIGKILL it; return what it printed."""
    seen = []
    for out in proc.stdout:
        seen.append(out.strip())
        if out.strip() == line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the child was not killed at {line!r}: {seen[-5:]}"
    return seen


def finish(state, out) -> list:
    proc = start(state, out)
    lines = proc.stdout.read().splitlines()
    assert proc.wait(timeout=300) == 0 and lines[-1] == "done", lines[-5:]
    return lines


def test_killed_mid_epoch_and_mid_save_then_resumed(tmp_path):
    reference = tmp_path / "reference.pt"
    finish(tmp_path / "unbroken-state.pt", reference)

    state, out = tmp_path / "state" / "training.pt", tmp_path / "final.pt"
    kill_when(start(state, out), f"step {STEPS_PER_EPOCH + 2}")  # two batches into epoch 2
    assert state.exists(), "epoch 1's state was saved before the kill"
    assert torch.load(state, weights_only=True)["history"]["epoch"] == [1]

    # Resumed from epoch 1, it trains epoch 2 and dies while saving it: half a file, never renamed into place.
    kill_when(start(state, out, "--hang-in-save", "1"), "saving")
    leftovers = [p.name for p in state.parent.iterdir() if p != state]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp"), leftovers
    assert torch.load(state, weights_only=True)["history"]["epoch"] == [1], "the previous state is intact"

    lines = finish(state, out)
    assert "resuming after epoch 1 of 3, from" in " ".join(lines)
    assert sum(line.startswith("step ") for line in lines) == 2 * STEPS_PER_EPOCH  # epochs 2 and 3 only
    final, ref = torch.load(out, weights_only=True), torch.load(reference, weights_only=True)
    assert final["history"]["epoch"] == [1, 2, 3]
    assert final["history"]["valid_acc"] == ref["history"]["valid_acc"]
    for name, weights in ref["weights"].items():
        assert torch.equal(final["weights"][name], weights), name
    assert sorted(p.name for p in state.parent.iterdir()) == [state.name], "no half-written file is left"
