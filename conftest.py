"""Test-wide settings: every test and every notebook under nbval runs at the smoke size, offline,
with its data folder (GloVe cache, checkpoints, training states, run records) in a fresh temporary
folder, so that a test run never resumes a training state or reads a checkpoint left by an earlier one.
Exercise check cells check the reference solutions (solutions/), so that no exercise can rot."""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("KIT_SIZE", "smoke")
os.environ.setdefault("KIT_CHECK_SOLUTIONS", "1")  # exercise check cells test the reference solutions
if "KIT_DATA_DIR" not in os.environ:
    os.environ["KIT_DATA_DIR"] = tempfile.mkdtemp(prefix="kit-test-data-")
    atexit.register(shutil.rmtree, os.environ["KIT_DATA_DIR"], True)
