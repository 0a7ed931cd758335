"""`torch.compile(backend="tritonnx")`: found through torch's backend entry point, graphs
exported with the dynamo exporter, compiled, run, and equal to eager; a graph tritonnx
cannot compile runs eagerly with one warning naming the reason."""

import warnings

import pytest
import torch


def test_backend_is_registered():
    from torch._dynamo import list_backends

    assert "tritonnx" in list_backends()


def test_small_cnn_matches_eager():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    ).eval()
    x = torch.randn(2, 3, 16, 16)
    torch._dynamo.reset()
    compiled = torch.compile(net, backend="tritonnx", dynamic=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # no fallback
        got = compiled(x)
        want = net(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_bert_layer_matches_eager():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        hidden_size=64, num_attention_heads=4, intermediate_size=128, attn_implementation="eager"
    )
    layer = transformers.models.bert.modeling_bert.BertLayer(config).eval()
    h = torch.randn(2, 16, 64)
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: layer(t)[0], backend="tritonnx", dynamic=False)
    with torch.no_grad():
        got = compiled(h)
        want = layer(h)[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_unsupported_graph_falls_back_to_eager_with_one_warning():
    def f(x):
        return torch.linalg.det(x) + 1  # ONNX Det, which tritonnx does not compile

    x = torch.randn(4, 4)
    torch._dynamo.reset()
    compiled = torch.compile(f, backend="tritonnx", dynamic=False)
    with torch.no_grad(), pytest.warns(UserWarning, match="tritonnx runs this captured graph eagerly") as record:
        got = compiled(x)
    torch.testing.assert_close(got, f(x))
    assert sum("eagerly" in str(w.message) for w in record) == 1


def test_dynamic_graph_compiles_per_set_of_sizes():
    """dynamic=True: Dynamo hands over the batch size as a SymInt input; each new batch size
    is compiled when first called (specialized), none runs eagerly."""
    from tritonnx import torch_backend

    compiles = []
    original = torch_backend._compile_graph

    def counted(gm, args, weights, options):
        compiles.append([tuple(a.shape) for a in args if isinstance(a, torch.Tensor) and not a.requires_grad])
        return original(gm, args, weights, options)

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).eval()
    torch._dynamo.reset()
    compiled = torch.compile(net, backend="tritonnx", dynamic=True)
    with pytest.MonkeyPatch.context() as mp, torch.no_grad(), warnings.catch_warnings():
        mp.setattr(torch_backend, "_compile_graph", counted)
        warnings.simplefilter("error", category=UserWarning)  # no fallback
        for batch in (2, 5, 2):
            x = torch.randn(batch, 8)
            torch.testing.assert_close(compiled(x), net(x), rtol=1e-4, atol=1e-5)
    assert compiles == [[(2, 8)], [(5, 8)]]
