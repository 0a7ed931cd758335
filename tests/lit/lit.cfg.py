# lit configuration: FileCheck tests of each pass through tritonnx-opt.
import os
import lit.formats

config.name = "tritonnx"
config.test_format = lit.formats.ShTest()
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.environment["PATH"] = os.environ["PATH"]
if "PYTHONPATH" in os.environ:  # tritonnx-opt imports the tritonnx under test (a worktree's src/)
    config.environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
