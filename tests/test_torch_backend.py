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
