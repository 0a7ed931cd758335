"""`tritonnx-opt`'s mlir-opt style options: the anchored pipeline form, -o,
--mlir-print-ir-after-all, --mlir-timing, and its error lines and --help text.

capfd, not capsys: MLIR's IR printing and timing report write to file descriptor 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonnx.compiler import opt

LIT = Path(__file__).parent / "lit"
OUTLINE = str(LIT / "outline.mlir")  # RUN: --pass-pipeline=fuse,outline
PARTITION = str(LIT / "partition.mlir")  # RUN: --pass-pipeline=partition


def run(capfd, *argv: str) -> tuple[int, str, str]:
    status = opt.main(list(argv))
    out, err = capfd.readouterr()
    return status, out, err


def test_anchored_pipeline_same_as_plain(capfd):
    status, plain, _ = run(capfd, OUTLINE, "--pass-pipeline=fuse,outline")
    assert status == 0 and "func.func" in plain
    status, anchored, _ = run(capfd, OUTLINE, "--pass-pipeline=builtin.module(fuse,outline)")
    assert status == 0
    assert anchored == plain


def test_anchored_pipeline_with_pass_options(capfd):
    status, out, err = run(capfd, OUTLINE, "--pass-pipeline=builtin.module(fuse,outline,choose-blocks{target=gpu})")
    assert status == 0, err
    assert "func.func" in out


def test_output_file(capfd, tmp_path):
    status, stdout, _ = run(capfd, PARTITION, "--pass-pipeline=partition")
    assert status == 0
    dest = tmp_path / "out.mlir"
    status, out, _ = run(capfd, PARTITION, "--pass-pipeline=partition", "-o", str(dest))
    assert status == 0
    assert out == ""
    assert dest.read_text() == stdout


def test_print_ir_after_all(capfd):
    status, out, err = run(capfd, PARTITION, "--pass-pipeline=partition,canonicalize", "--mlir-print-ir-after-all")
    assert status == 0
    headers = [ln for ln in err.splitlines() if ln.startswith("// -----// IR Dump After")]
    assert len(headers) == 2
    assert "partition" in headers[0]
    assert "canonicalize" in headers[1]
    assert "IR Dump" not in out
    assert "func.func" in out


def test_timing(capfd):
    status, out, err = run(capfd, PARTITION, "--pass-pipeline=partition,canonicalize", "--mlir-timing")
    assert status == 0
    assert "partition" in err
    assert "Canonicalizer" in err or "canonicalize" in err
    assert "Execution time" not in out


def test_unknown_option(capfd):
    status, out, err = run(capfd, PARTITION, "--foo")
    assert status == 1
    assert out == ""
    assert err.strip().splitlines() == ["tritonnx-opt: unknown option --foo; see tritonnx-opt --help"]


def _raise_system_exit(argv):
    with pytest.raises(SystemExit) as e:
        opt.main(argv)
    return e.value.code


def test_mistyped_pass_option(capfd):
    status, out, err = run(capfd, OUTLINE, "--pass-pipeline=fuse,outline,choose-blocks{targt=gpu}")
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tritonnx-opt: ")
    assert "targt" in lines[0] and "choose-blocks" in lines[0]
    assert "Traceback" not in err


def test_malformed_pass_option(capfd):
    status, _, err = run(capfd, OUTLINE, "--pass-pipeline=choose-blocks{target}")
    assert status == 1
    assert err.strip().splitlines() == [
        "tritonnx-opt: pass choose-blocks: malformed option 'target', expected key=value"
    ]


def test_unknown_pass(capfd):
    status, out, err = run(capfd, PARTITION, "--pass-pipeline=partition,no-such-pass")
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tritonnx-opt: ") and "no-such-pass" in lines[0]


def test_help_has_full_first_paragraph(capfd):
    assert _raise_system_exit(["--help"]) == 0
    out, _ = capfd.readouterr()
    first_paragraph = (opt.__doc__ or "").split("\n\n")[0]
    assert first_paragraph in out
    assert "prints the result." in out
    for option in ("-o FILE", "--mlir-print-ir-after-all", "--mlir-timing"):
        assert option in out


def test_strip_anchor():
    assert opt.strip_anchor("builtin.module(fuse,outline)") == "fuse,outline"
    assert opt.strip_anchor(" fuse,outline ") == "fuse,outline"
