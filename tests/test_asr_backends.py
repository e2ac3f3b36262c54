"""openai-whisper as the ASR backend: the bundled base converted to an openai-whisper checkpoint loads, and the
samples come out of both backends alike; models are found offline or refused with a clear reason."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from analyzer import Config, audio, int8, transcribe
from analyzer.cli import main
from analyzer.evaluate import cer

from conftest import ROOT, SAMPLE_IDS, SAMPLES, truth

whisper = pytest.importorskip("whisper", reason='openai-whisper is not installed (pip install ".[test]")')

CER_POINTS = 0.02   # the two backends' CER on the samples, within this of each other


def _converter():
    spec = importlib.util.spec_from_file_location("convert_openai", ROOT / "models" / "whisper" / "convert_openai.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    config = Config()
    return _converter().convert(transcribe.bundled_model_dir(config.cache_dir),
                                tmp_path_factory.mktemp("openai") / "whisper-base-openai.pt")


@pytest.fixture(scope="module")
def openai_results(checkpoint, tmp_path_factory):
    """The samples analysed from the command line with the openai-whisper backend and the converted base."""
    out = tmp_path_factory.mktemp("openai-results")
    status = main(["analyze", str(SAMPLES), "--out", str(out), "-q", "--asr-backend", "openai-whisper",
                   "--model", str(checkpoint)])
    assert status == 0
    return {call_id: json.loads((out / f"{call_id}.json").read_text(encoding="utf-8")) for call_id in SAMPLE_IDS}


def test_the_converted_checkpoint_is_the_same_model(checkpoint):
    model = whisper.load_model(str(checkpoint), device="cpu")  # strict: every parameter named and shaped right
    assert model.dims.n_text_layer == 6 and model.dims.n_vocab == 51865 and model.dims.n_mels == 80
    variables = _converter().read_ct2(transcribe.bundled_model_dir(Config().cache_dir) / "model.bin")
    fused = torch.from_numpy(np.array(variables["decoder/layer_3/self_attention/linear_0/weight"], np.float32))
    block = model.decoder.blocks[3].attn
    assert torch.equal(torch.cat([block.query.weight, block.key.weight, block.value.weight]), fused)
    assert block.key.bias is None
    embedding = torch.from_numpy(np.array(variables["decoder/embeddings/weight"], np.float32))
    assert torch.equal(model.decoder.token_embedding.weight, embedding)


def test_an_int8_layer_is_the_integer_product_of_rounded_rows():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    inputs = torch.randn(3, 7, 64) * torch.logspace(-2, 2, 7)[:, None]   # rows of very different sizes
    weight_scale = linear.weight.abs().amax(dim=1) / 127
    weight = torch.round(linear.weight / weight_scale[:, None]).long()
    rows = inputs.reshape(-1, 64)
    row_scale = rows.abs().amax(dim=1) / 127
    rounded = torch.round(rows / row_scale[:, None]).long()
    expected = (rounded @ weight.T) * row_scale[:, None] * weight_scale[None, :] + linear.bias
    got = int8.Int8Linear(linear)(inputs)
    assert got.shape == (3, 7, 48)
    torch.testing.assert_close(got.reshape(-1, 48), expected.detach(), rtol=1e-5, atol=1e-6)
    float_result = linear(inputs).detach()
    assert ((got - float_result).norm(dim=-1) / float_result.norm(dim=-1)).max() < 0.02


def test_int8_whisper_reads_a_window_as_float32_does(checkpoint):
    """The converted base in int8 and in float32 on 30 s of a sample: the encoder's output and the first tokens'
    logits agree, and the whole model is int8 (no float linear layer left)."""
    models = {compute: transcribe.load(Config(asr_backend="openai-whisper", whisper_model=str(checkpoint),
                                              device="cpu", compute_type=compute)).model
              for compute in ("float32", "int8")}
    assert not any(isinstance(m, torch.nn.Linear) for m in models["int8"].modules())
    assert sum(isinstance(m, int8.Int8Linear) for m in models["int8"].modules()) == 6 * 6 + 6 * 10
    samples = audio.load(SAMPLES / "call_02_abusive.wav").mono()
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(samples)))[None]
    tokens = torch.tensor([list(whisper.tokenizer.get_tokenizer(True, language="zh").sot_sequence)])
    with torch.no_grad():
        encoded = {compute: model.encoder(mel) for compute, model in models.items()}
        logits = {compute: model.decoder(tokens, encoded[compute])[0, -1] for compute, model in models.items()}
    similarity = torch.nn.functional.cosine_similarity
    assert similarity(encoded["int8"].flatten(), encoded["float32"].flatten(), dim=0) > 0.99
    assert similarity(logits["int8"], logits["float32"], dim=0) > 0.99
    assert logits["int8"].argmax() == logits["float32"].argmax()


def test_both_backends_transcribe_the_samples_alike(sample_results, openai_results):
    pairs = {"faster-whisper": [], "openai-whisper": []}
    for call_id in SAMPLE_IDS:
        reference = "".join(t["text"] for t in truth(call_id)["turns"])
        pairs["faster-whisper"].append((reference, "".join(t.text for t in sample_results[call_id].turns)))
        pairs["openai-whisper"].append((reference, "".join(t["text"] for t in openai_results[call_id]["turns"])))
    rates = {backend: cer(these) for backend, these in pairs.items()}
    assert abs(rates["faster-whisper"] - rates["openai-whisper"]) <= CER_POINTS, rates


def test_the_openai_backend_runs_end_to_end_and_says_so(openai_results, checkpoint):
    for call_id in SAMPLE_IDS:
        result = openai_results[call_id]
        asr = result["provenance"]["models"]["asr"]
        assert asr["backend"] == "openai-whisper" and asr["path"] == str(checkpoint) and len(asr["sha256"]) == 64
        assert result["provenance"]["params"]["compute_type"] == "int8" and asr["cpu_int8_gemm"] == "PyTorch"
        words = [w for t in result["turns"] for w in t["words"]]
        assert words and all(0 <= w["start"] <= w["end"] <= result["source"]["duration_s"] + 0.5 for w in words)
        assert {s["role"] for s in result["speakers"]} == {"collector", "borrower"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--asr-backend", "openai-whisper"], "needs --model"),
    (["--asr-backend", "openai-whisper", "--model", "/nowhere/small.pt"], "no such openai-whisper checkpoint"),
    (["--asr-backend", "openai-whisper", "--model", "tiny"], "--allow-download fetches it"),
    (["--asr-backend", "openai-whisper", "--model", "enormous"], "not an openai-whisper model name"),
    (["--model", "/nowhere/model-dir"], "not a Whisper size name"),
])
def test_models_are_found_offline_or_refused_clearly(tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))  # no openai-whisper checkpoints here
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(SAMPLES / "call_01_compliant.wav"), "--out", str(tmp_path / "out"), "-q", *argv])
    assert message in str(stop.value)


def test_openai_whisper_refuses_a_compute_type_it_has_not(tmp_path, checkpoint):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(SAMPLES / "call_01_compliant.wav"), "--out", str(tmp_path), "--asr-backend",
              "openai-whisper", "--model", str(checkpoint), "--device", "cpu", "--compute-type", "int8_float16"])
    assert "computes on cpu in int8 or float32, not int8_float16" in str(stop.value)


def test_an_openai_checkpoint_is_not_given_to_faster_whisper(tmp_path, checkpoint):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(SAMPLES / "call_01_compliant.wav"), "--out", str(tmp_path), "--model", str(checkpoint)])
    assert "--asr-backend openai-whisper" in str(stop.value)
