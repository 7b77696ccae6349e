"""Test-wide settings: every test and every notebook under nbval runs at the smoke size, offline."""
import os

os.environ.setdefault("KIT_SIZE", "smoke")
