import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
