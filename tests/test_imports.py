"""What a cold `vidiff generate` imports: diffusers without torch._dynamo and without transformers
(vidiff.dynamo_import), diffusers' allow_in_graph classes still registered with the real torch._dynamo once anything
loads it (torch.compile), and transformers' quantization config class still the one diffusers checks against."""

import subprocess
import sys

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_default_clip_never_imports_torch_dynamo_or_transformers(tmp_path):
    # diffusers imported torch._dynamo for one decorator (1.3 s of a 6-8 s cold clip on a 2-core EPYC) and transformers
    # for one type annotation (0.45 s); the default's captions come from its text cache
    out = tmp_path / "clip.mp4"
    code = (f"import sys; from vidiff.cli import main; "
            f"assert main(['generate', 'a red circle quickly bouncing left and right', '-o', {str(out)!r}, '-q']) == 0; "
            f"print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'transformers', 'regex')))[:3])")
    assert run(code) == "[]"
    assert out.stat().st_size > 0


def test_diffusers_quantization_config_still_checks_against_transformers_class():
    code = ("import vidiff, sys; from diffusers.quantizers import pipe_quant_config as q; "
            "assert 'transformers' not in sys.modules; "
            "from transformers.utils.quantization_config import QuantizationConfigMixin, BitsAndBytesConfig; "
            "mixin = q.TransformersQuantConfigMixin; "
            "print(isinstance(BitsAndBytesConfig(), mixin), isinstance(object(), mixin), "
            "issubclass(BitsAndBytesConfig, mixin), issubclass(int, mixin), "
            "sys.modules['transformers.utils.quantization_config'].QuantizationConfigMixin is QuantizationConfigMixin)")
    assert run(code) == "True False True False True"
    # transformers imported first: diffusers binds the real class, as without vidiff
    assert run("import transformers.utils.quantization_config as t, vidiff; from diffusers.quantizers import "
               "pipe_quant_config as q; print(q.TransformersQuantConfigMixin is t.QuantizationConfigMixin)") == "True"


def test_diffusers_classes_reach_the_real_allow_in_graph_and_compile():
    # the same classes are registered as when torch._dynamo is imported first, and a diffusers model compiles (dynamo
    # traces it; the eager backend needs no C compiler) to the eager output
    check = ("import torch, torch._dynamo; from torch._dynamo import trace_rules; "
             "from diffusers.models.attention_processor import Attention; "
             "from diffusers.models.attention import BasicTransformerBlock; ")
    registered = "print([id(c) in trace_rules._allowed_callable_ids for c in (Attention, BasicTransformerBlock)])"
    assert run(check + registered) == "[True, True]"  # the reference: torch._dynamo first
    assert run("import vidiff, diffusers.models.attention_processor, sys; "
               "assert 'torch._dynamo' not in sys.modules; " + check + registered) == "[True, True]"
    compiled = ("from diffusers import UNet2DConditionModel; import vidiff.dynamo_import as d; "
                "m = UNet2DConditionModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, "
                "block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=8, attention_head_dim=2, "
                "down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), "
                "up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D')).eval(); "
                "x, t, c = torch.randn(1, 3, 8, 8), torch.tensor([10]), torch.randn(1, 4, 8); "
                "import torch._dynamo; "
                "a = m(x, t, c).sample; b = torch.compile(m, backend='eager')(x, t, c).sample; "
                "print(torch.allclose(a, b, atol=1e-5), len(d._pending))")
    assert run("import vidiff, torch; " + compiled) == "True 0"
