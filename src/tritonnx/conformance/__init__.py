"""ONNX conformance: tritonnx as an ONNX backend (`onnx_backend`) and the runner of ONNX's
own test suite against it (`python -m tritonnx.conformance`, see `runner`).

  cases.py         collect ONNX's test cases, run one, judge its outputs
  pool.py          worker processes with time limits that survive a crashing test
  report.py        the Markdown report and `{test name: outcome}` JSON
  runner.py        the command line
  onnx_backend.py  `onnx.backend.base.Backend` over `tritonnx.compile`
"""

from __future__ import annotations

from tritonnx.conformance.cases import OUTCOMES, Case, Result, collect_cases, compare, run_case

__all__ = ["OUTCOMES", "Case", "Result", "collect_cases", "compare", "run_case"]
