"""The benchmark networks, written in plain torch (no torchvision or transformers).

`resnet50()`: torchvision's ResNet-50 layout (v1.5: the stride on the 3x3 conv of each
bottleneck), bottleneck blocks [3, 4, 6, 3], BatchNorm, ReLU, max pool, global average
pool, a 1000-way fc. Input float32 [N, 3, 224, 224], output logits [N, 1000].

`bert_base()`: a BERT-base encoder: word + position + token-type embeddings (token type
all zeros), LayerNorm, 12 post-LN layers of hidden 768, 12 heads, FFN 3072 with exact
(erf) GELU. Inputs input_ids and attention_mask int64 [N, S] (mask 1 = attend, 0 =
padding), output the last hidden state float32 [N, S, 768].

Both are built with torch.manual_seed(0) and returned in eval mode on the CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# --------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNet50(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, cin = [], 64
        for i, (width, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            seq = []
            for b in range(blocks):
                seq.append(Bottleneck(cin, width, 2 if i > 0 and b == 0 else 1))
                cin = width * Bottleneck.expansion
            stages.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50() -> ResNet50:
    """ResNet-50 with seeded random weights, torchvision's initialization (Kaiming normal
    convolutions) and random BatchNorm statistics, so that BN folding is exercised."""
    torch.manual_seed(0)
    model = ResNet50()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.0)
                m.bias.normal_(0.0, 0.05)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


# --------------------------------------------------------------------------- BERT-base


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def split(self, x):
        n, s, _ = x.shape
        return x.view(n, s, self.heads, self.head_dim).transpose(1, 2)  # [N, H, S, D]

    def forward(self, x, mask_bias):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)  # [N, H, S, D]
        n, _, s, _ = ctx.shape
        return self.out(ctx.transpose(1, 2).reshape(n, s, self.heads * self.head_dim))


class EncoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.attention = SelfAttention(hidden, heads)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, ffn)
        self.gelu = nn.GELU()
        self.output = nn.Linear(ffn, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, mask_bias):
        x = self.attention_norm(x + self.attention(x, mask_bias))
        return self.output_norm(x + self.output(self.gelu(self.intermediate(x))))


class BertEncoder(nn.Module):
    def __init__(
        self,
        vocab: int = 30522,
        hidden: int = 768,
        layers: int = 12,
        heads: int = 12,
        ffn: int = 3072,
        max_positions: int = 512,
        type_vocab: int = 2,
        eps: float = 1e-12,
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_positions, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn, eps) for _ in range(layers))
        self.register_buffer("position_ids", torch.arange(max_positions), persistent=False)

    def forward(self, input_ids, attention_mask):
        s = input_ids.shape[1]
        positions = self.position_ids[:s]
        token_types = torch.zeros_like(positions)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_types)
        )
        x = self.embedding_norm(x)
        # [N, S] -> [N, 1, 1, S]: 0 where attended, -10000 on padding (as the original BERT)
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def bert_base() -> BertEncoder:
    """BERT-base encoder with seeded random weights: N(0, 0.02) linears and embeddings,
    as BERT initializes them, and zero biases."""
    torch.manual_seed(0)
    model = BertEncoder()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.normal_(0.0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.zero_()
    return model.eval()


def bert_inputs(batch: int, seq: int, pad: int = 16, vocab: int = 30522, seed: int = 0):
    """(input_ids, attention_mask), int64 [batch, seq]: random token ids, the last `pad`
    positions masked off as padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=g, dtype=torch.int64)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    if pad:
        mask[:, -pad:] = 0
    return ids, mask


def image_input(batch: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    """A float32 [batch, 3, size, size] standard normal input."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g)
