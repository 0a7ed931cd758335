import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
if not os.path.exists("/dev/nvidia0"):
    # no GPU: kernels run in Triton's interpreter, which must be chosen before anything
    # (torch.onnx's exporter, for one) imports triton.language
    os.environ.setdefault("TRITON_INTERPRET", "1")

import tempfile  # noqa: E402

# a compile cache of the test session's own, so no test is served a stale artifact
os.environ["TRITONNX_CACHE_DIR"] = tempfile.mkdtemp(prefix="tritonnx-test-cache-")


def pytest_collection_modifyitems(config, items):
    """The slow tests first (in their order), so that with `-n 2` (pytest-xdist, as the README
    runs the suite) the two workers start on them and the short tests fill in after, instead
    of one long test running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
