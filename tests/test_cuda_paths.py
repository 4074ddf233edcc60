"""The CUDA paths of issue 16, exercised on the CPU: fakes at the boundary (a patched compute
capability, a recording SDPA, a recording torchao), so each failure predicted for the first
H100 run has a test that fails without its fix."""

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from hardware_profiles.device import resolve_device
from harness.plan import BenchConfig, make_plan
from harness.presets import PRESETS, get_preset
from harness.quality import Tolerance, compare_logits
from harness.scenarios import TrainScenario
from harness.variants import parse_variant, skip_reason
from harness.variants.attention import sdpa_backends

CPU = torch.device("cpu")


@pytest.fixture
def plenty_of_memory(monkeypatch):
    monkeypatch.setattr("harness.memory.available_bytes", lambda device: (2**40, "test: 1 TiB"))


# -- 1. decode's default context fits max_seq_len ----------------------------------------------

@pytest.mark.parametrize("preset", list(PRESETS))
def test_default_decode_context_fits_every_preset(preset, plenty_of_memory):
    plan = make_plan(BenchConfig(preset=preset, scenario="decode"), resolve_device("cpu"))
    model = get_preset(preset).model
    assert plan.seq_len + plan.cfg.new_tokens <= model.max_seq_len
    assert plan.seq_len == min(get_preset(preset).seq_len, model.max_seq_len - 16)
    assert "new-tokens" in plan.seq_len_reason or "preset" in plan.seq_len_reason


def test_an_explicit_decode_context_that_does_not_fit_is_still_refused():
    from profiler.errors import ConfigError

    with pytest.raises(ConfigError, match="exceeds"):
        make_plan(BenchConfig(preset="tiny", scenario="decode", seq_len=64),
                  resolve_device("cpu"))


def test_bench_decode_with_no_size_flags_runs(db_path):
    from harness.cli import cli

    result = CliRunner().invoke(cli, ["bench", "--scenario", "decode", "--preset", "tiny",
                                      "--window-s", "0.3", "--trials", "1", "--db", db_path,
                                      "--json"])
    assert result.exit_code == 0, result.output


# -- 2. the train step's loss survives the next step (CUDA graphs overwrite outputs) -----------

class _Echo(nn.Module):
    """Returns the same output buffer every call, as a CUDA graph replay does."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.out = None

    def forward(self, inputs, targets):
        self.out = self.w * 2.0
        return self.out


def test_train_step_returns_a_loss_that_owns_its_storage():
    scenario = TrainScenario(get_preset("tiny").model, batch_size=1, seq_len=4, device=CPU,
                             variant=parse_variant("fp32", "train", "cpu"))
    model = _Echo()
    scenario.prepare(model)
    loss = scenario.step()
    assert loss.untyped_storage().data_ptr() != model.out.untyped_storage().data_ptr()


# -- 3. the attention probe makes the model's own calls -----------------------------------------

class _FakeSdpa:
    """Records each SDPA call; like CUDA's flash kernel, refuses an explicit mask."""

    def __init__(self):
        self.calls = []

    def __call__(self, q, k, v, attn_mask=None, is_causal=False, enable_gqa=False, **kw):
        self.calls.append({"q": tuple(q.shape), "k": tuple(k.shape), "dtype": q.dtype,
                           "mask": None if attn_mask is None else attn_mask.dtype,
                           "gqa": enable_gqa, "flash": torch.backends.cuda.flash_sdp_enabled()})
        if attn_mask is not None and torch.backends.cuda.flash_sdp_enabled():
            raise RuntimeError("flash attention does not support an explicit attn_mask")
        return torch.zeros(q.shape, dtype=q.dtype)


def test_attention_probe_uses_gqa_the_mask_dtype_and_head_dim(monkeypatch):
    fake = _FakeSdpa()
    monkeypatch.setattr(F, "scaled_dot_product_attention", fake)
    model = get_preset("llama-1b").model
    variant = parse_variant("bf16+sdpa-flash", "decode", "cuda")
    reason = skip_reason(variant, "decode", CPU, model)
    assert reason and "decode-step" in reason and "GQA 32:8" in reason
    assert {c["mask"] for c in fake.calls} == {None, torch.bool}
    assert all(c["gqa"] and c["q"][1] == 32 and c["k"][1] == 8 and c["q"][3] == 64
               and c["dtype"] == torch.bfloat16 for c in fake.calls)
    # Prefill makes only the causal call: flash can run it.
    assert skip_reason(parse_variant("bf16+sdpa-flash", "prefill", "cuda"), "prefill", CPU,
                       model) is None


def test_the_backend_each_call_runs_with_is_recorded(monkeypatch):
    monkeypatch.setattr(F, "scaled_dot_product_attention", _FakeSdpa())
    monkeypatch.setattr("harness.variants.attention.priority_order",
                        lambda: ["FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"])
    used = sdpa_backends(get_preset("tiny-llama").model, parse_variant("fp32", "decode", "cpu"),
                         "decode", CPU)
    assert used == {"causal": "flash", "decode_step": "efficient"}


# -- 5. int4 is packed for torch's own kernel --------------------------------------------------

def test_int4_uses_the_tinygemm_packing_not_mslk(monkeypatch):
    import torchao.quantization

    seen = []
    monkeypatch.setattr(torchao.quantization, "quantize_", lambda model, config: seen.append(config))
    from harness.variants.quant import quantize

    quantize(nn.Sequential(nn.Linear(256, 256)), "int4-weight-only")
    assert str(seen[0].int4_packing_format.value if hasattr(seen[0].int4_packing_format, "value")
               else seen[0].int4_packing_format) == "tile_packed_to_4d"


# -- 6. every quality reference is computed outside the variant's global settings --------------

@pytest.mark.parametrize("scenario, hook", [("prefill", "logits_of"), ("train", "train_losses")])
def test_tf32_reference_is_computed_without_tf32(monkeypatch, db_path, scenario, hook):
    import harness.execute as execute
    from harness.runner import run_bench
    from profiler.store import Store

    monkeypatch.setattr("harness.variants.base.capability", lambda device: (9, 0))
    seen, real = [], getattr(execute, hook)

    def recording(*args, **kwargs):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return real(*args, **kwargs)

    monkeypatch.setattr(execute, hook, recording)
    cfg = BenchConfig(preset="tiny", scenario=scenario, variants=("tf32",), device="cpu",
                      steps=1, trials=1, warmup_steps=0)
    run = run_bench(cfg, Store(db_path))
    assert run["status"] == "ok", run.get("error")
    assert seen[0] is False  # the reference: exact fp32
    assert seen[-1] is True  # the variant: TF32 on


# -- 7. 2:4 prunes only what it converts -------------------------------------------------------

def test_2_4_pruning_leaves_the_tied_embedding_alone():
    from harness.model import Transformer
    from harness.variants.sparsity import prune_2_4

    torch.manual_seed(0)
    model = Transformer(get_preset("tiny").model)
    embedding = model.tok_emb.weight.detach().clone()
    pruned = prune_2_4(model)
    assert torch.equal(model.tok_emb.weight, embedding)
    assert "lm_head" not in pruned and pruned
    w = dict(model.named_modules())[pruned[0]].weight.view(-1, 4)
    assert ((w == 0).sum(-1) >= 2).all()


# -- 8. capability probes run the real path ----------------------------------------------------

class _Refuses(nn.Module):
    def forward(self, x):
        raise RuntimeError("kernel refuses this input")


def _refusing(model, *args, **kwargs):
    model[0] = _Refuses()


def test_quantization_probe_runs_the_converted_layer(monkeypatch):
    monkeypatch.setattr("harness.variants.quant.quantize", _refusing)
    reason = skip_reason(parse_variant("int8-dynamic", "prefill", "cpu"), "prefill", CPU)
    assert reason and "kernel refuses" in reason


def test_fp8_has_a_probe_that_runs_the_layer(monkeypatch):
    monkeypatch.setattr("harness.variants.base.capability", lambda device: (9, 0))
    monkeypatch.setattr("harness.variants.fp8._float8_training", _refusing)
    variant = parse_variant("fp16-autocast+fp8-rowwise", "train", "cuda")
    reason = skip_reason(variant, "train", CPU)
    assert reason and reason.startswith("fp8-rowwise cannot run here") and "refuses" in reason


def test_2_4_training_has_a_probe_that_runs_forward_and_backward(monkeypatch):
    monkeypatch.setattr("harness.variants.base.capability", lambda device: (9, 0))
    monkeypatch.setattr("harness.variants.sparsity.semi_sparse_training", _refusing)
    reason = skip_reason(parse_variant("bf16-autocast+2:4", "train", "cuda"), "train", CPU)
    assert reason and "2:4 sparsity cannot run here" in reason


def test_grouped_mm_probe_uses_uneven_groups_like_real_routing(monkeypatch):
    from harness.variants.moe import grouped_mm_trial

    offsets = []

    def fake_grouped_mm(a, b, offs=None):
        offsets.append(offs.tolist())
        return torch.zeros(a.shape[0], b.shape[-1], dtype=a.dtype, requires_grad=True)

    monkeypatch.setattr(torch, "_grouped_mm", fake_grouped_mm, raising=False)
    grouped_mm_trial(CPU, torch.float32, training=True)
    sizes = [b - a for a, b in zip([0] + offsets[0], offsets[0])]
    assert 0 in sizes and any(s % 16 for s in sizes)


# -- 12. the quality guard is judged where the reference decides ----------------------------------

def test_top1_is_judged_only_where_the_reference_margin_beats_its_bf16_spread():
    torch.manual_seed(0)
    # Random weights: the top two tokens nearly tie at every position.
    reference = torch.randn(2, 128, 512) * 0.01
    reference[..., :2] = 0.05 + 0.0005 * torch.randn(2, 128, 2)
    spread = reference.to(torch.bfloat16).float()
    # fp8-like error: 4% relative (within max_rel_err), ~16x bf16's rounding.
    variant = reference + 0.04 * reference.std() * torch.randn_like(reference)
    q = compare_logits(reference, variant, Tolerance(), spread=spread)
    assert q["top1_agreement_all_positions"] < 0.9  # the old guard flagged this
    assert q["decisive_positions"] < q["positions"] / 4  # most positions are ambiguous
    assert q["ok"] and q["top1_agreement"] >= 0.9
    broken = reference + 0.5 * reference.std() * torch.randn_like(reference)
    assert not compare_logits(reference, broken, Tolerance(), spread=spread)["ok"]


def test_top1_is_still_judged_on_decisive_positions():
    reference = torch.zeros(1, 64, 32)
    reference[..., 3] = 5.0  # a clear winner everywhere
    wrong = reference.clone()
    wrong[..., 3], wrong[..., 7] = 0.0, 5.0
    q = compare_logits(reference, wrong, Tolerance(max_rel_err=10.0),
                       spread=reference.to(torch.bfloat16).float())
    assert q["top1_judged"] and q["top1_agreement"] == 0.0 and not q["ok"]
