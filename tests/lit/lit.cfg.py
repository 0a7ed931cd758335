# lit configuration: FileCheck tests of each pass through tritonnx-opt.
import os

import lit.formats

config.name = "tritonnx"
config.test_format = lit.formats.ShTest()
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.environment["PATH"] = os.environ["PATH"]
# tritonnx-opt imports this checkout's package, not whichever one the environment installed
config.environment["PYTHONPATH"] = os.pathsep.join(
    p for p in (os.path.join(os.path.dirname(__file__), "..", "..", "src"), os.environ.get("PYTHONPATH")) if p
)
