import os

# No hub access in tests, ever (a hub lookup would retry for tens of seconds offline).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
