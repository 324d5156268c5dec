"""Heads: pre-training (3E -> 117), GREP (E -> E -> 117), TREP (3E -> 117, starts from the pre-training
head); activated outputs and the [source, doa, dist] concatenation order."""
from __future__ import annotations

import pytest
import torch

from seld.accdoa import activate_output, unflatten_output
from seld.errors import ConfigError
from seld.models import GrepHead, HeadConfig, PretrainHead, TrepHead, build_head, get_head

E = 8


def test_pretrain_head_is_activated_linear_of_concatenated_tokens():
    torch.manual_seed(0)
    head = PretrainHead(E)
    assert head.linear.in_features == 3 * E and head.linear.out_features == 117
    tokens = torch.randn(2, 50, 3, E)
    out = head(tokens)
    assert out.shape == (2, 50, 117)
    concat = torch.cat([tokens[:, :, 0], tokens[:, :, 1], tokens[:, :, 2]], dim=-1)  # [source, doa, dist]
    torch.testing.assert_close(out, activate_output(concat @ head.linear.weight.T + head.linear.bias))


def test_concatenation_order_source_doa_dist():
    head = PretrainHead(E)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.linear.weight[:, E] = 1.0  # first value of the doa token
    tokens = torch.zeros(1, 1, 3, E)
    tokens[0, 0, 1, 0] = 0.7
    tracks = unflatten_output(head(tokens))
    torch.testing.assert_close(tracks[..., :2, :], torch.full((1, 1, 3, 2, 13), float(torch.tanh(torch.tensor(0.7)))))
    torch.testing.assert_close(tracks[..., 2, :], torch.full((1, 1, 3, 13), 0.7))


def test_outputs_are_in_range():
    torch.manual_seed(1)
    for head, x in ((PretrainHead(E), torch.randn(2, 50, 3, E) * 50), (TrepHead(E), torch.randn(2, 50, 3, E) * 50),
                    (GrepHead(E), torch.randn(2, 50, E) * 50)):
        tracks = unflatten_output(head(x))
        assert tracks[..., :2, :].abs().max() <= 1.0
        assert tracks[..., 2, :].min() >= 0.0
        assert (tracks[..., 2, :] == 0).any() and (tracks[..., 2, :] > 0).any()


def test_trep_head_starts_from_pretrain_head():
    torch.manual_seed(2)
    pre, trep = PretrainHead(E), TrepHead(E)
    x = torch.randn(2, 50, 3, E)
    assert not torch.allclose(pre(x), trep(x))
    assert trep.init_from(pre) is trep
    assert torch.equal(pre(x), trep(x))
    with torch.no_grad():  # a copy, not shared storage
        pre.linear.weight.add_(1.0)
    assert not torch.equal(pre(x), trep(x))
    with pytest.raises(ValueError, match="cannot start from"):
        TrepHead(E + 1).init_from(pre)


def test_pretrain_and_trep_heads_share_a_body_but_stay_apart():
    # one Linear(3E, 117) under the same state-dict keys, so checkpoints load either way round
    pre, trep = PretrainHead(E), TrepHead(E)
    assert list(pre.state_dict()) == list(trep.state_dict()) == ["linear.weight", "linear.bias"]
    trep.load_state_dict(pre.state_dict())
    assert torch.equal(trep.output_layer.weight, pre.linear.weight)
    # siblings: the type checks of the fine-tuning build and the least-squares fit still tell them apart
    assert not isinstance(trep, PretrainHead) and not isinstance(pre, TrepHead)
    with pytest.raises(ValueError, match="TREP head \\(117, 24\\) cannot start from TrepHead"):
        TrepHead(E).init_from(trep)  # type: ignore[arg-type]


def test_grep_head_is_two_layer_mlp():
    torch.manual_seed(3)
    head = GrepHead(E, activation="relu")
    a = torch.randn(2, 50, E)
    lin1, lin2 = head.mlp[0], head.mlp[3]
    assert (lin1.in_features, lin1.out_features, lin2.out_features) == (E, E, 117)
    torch.testing.assert_close(head(a), activate_output(lin2(torch.relu(lin1(a)))))
    assert GrepHead(E, hidden_dim=32).mlp[0].out_features == 32
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        GrepHead(E, activation="swish")


def test_head_registry_and_config():
    assert isinstance(build_head(HeadConfig(type="grep", hidden_dim=16), E), GrepHead)
    assert isinstance(build_head(HeadConfig(type="trep"), E), TrepHead)
    assert get_head("trep") is TrepHead
    with pytest.raises(ConfigError, match="unknown type 'mlp'; valid: grep, trep"):
        HeadConfig(type="mlp")
    with pytest.raises(ConfigError, match="valid names: grep, trep"):
        get_head("mlp")


def test_wrong_input_shapes():
    with pytest.raises(ValueError, match=r"^pre-training head expects \(batch, T, 3, 8\)"):
        PretrainHead(E)(torch.randn(2, 50, 2, E))
    with pytest.raises(ValueError, match=r"^TREP head expects \(batch, T, 3, 8\), got shape \(2, 50, 3, 9\)"):
        TrepHead(E).raw(torch.randn(2, 50, 3, E + 1))
    with pytest.raises(ValueError, match=r"\(batch, T, 8\)"):
        GrepHead(E)(torch.randn(2, 50, 3, E))


def test_grep_default_is_two_plain_linear_layers():
    torch.manual_seed(4)
    assert HeadConfig().activation == "none"
    head = build_head(HeadConfig(), E)
    lin1, lin2 = head.mlp[0], head.mlp[3]
    a = torch.randn(2, 50, E)
    torch.testing.assert_close(head(a), activate_output(lin2(lin1(a))))  # no activation in between
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        HeadConfig(activation="swish")  # type: ignore[arg-type]


def test_projection_pooling_attention_and_sum():
    from seld.models.projection import Projection

    torch.manual_seed(5)
    x = torch.randn(2, 3, 4, E)  # (batch, T, 4 rows, in)
    summed = Projection(E, 6, pooling="sum")
    rows = summed.mlp(x)
    torch.testing.assert_close(summed(x), rows.sum(dim=2))  # the authors' code: a plain sum over the 4 rows
    attn = Projection(E, 6, pooling="attention")
    attn.load_state_dict(summed.state_dict(), strict=False)  # same MLP, plus a score layer
    w = attn.pool.weights(rows)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    assert w.std() > 1e-3  # a real softmax over the rows, not all ones
    torch.testing.assert_close(attn(x), (w.unsqueeze(-1) * rows).sum(dim=2))
    with pytest.raises(ConfigError, match="unknown pooling 'max'"):
        Projection(E, 6, pooling="max")


def test_models_package_has_no_import_cycles():
    """Every import between seld.models modules (module level or inside functions) points one way."""
    import ast
    from pathlib import Path

    import seld.models

    folder = Path(seld.models.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seld.models."):
                deps.add(node.module.split(".")[2])
        graph[path.stem] = deps - {path.stem}
    assert "registry" in graph["tokenizer"] and "heads" in graph["registry"]  # the graph is really read

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in graph.get(start, ()))

    cycles = sorted(m for m in graph if m != "__init__" and reaches(m, m))
    assert cycles == []


@pytest.mark.parametrize("key, value, message", [
    ("dropout", 1.5, r"head.dropout must be in \[0, 1\), got 1.5"),
    ("dropout", -0.1, r"head.dropout must be in \[0, 1\), got -0.1"),
    ("hidden_dim", 0, r"head.hidden_dim must be >= 1 or null \(the embedding width\), got 0"),
    ("lstsq_ridge", float("nan"), "head.lstsq_ridge must be >= 0, got nan"),
])
def test_head_config_refuses_out_of_range_numbers(key, value, message):
    with pytest.raises(ConfigError, match=message):
        HeadConfig(**{key: value})
    assert HeadConfig(dropout=0.0, hidden_dim=1).dropout == 0.0  # the edges that make sense stay allowed
