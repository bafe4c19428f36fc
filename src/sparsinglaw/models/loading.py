"""Load a causal LM and its tokenizer from a hub id, a local directory, a ``.gguf`` file or MiniCPM format.

Every failure caused by the input becomes a one-line ``ModelError`` (missing path, unreadable file, not a
causal LM, remote code needed), so the CLI can print it without a traceback. Remote code is opt-in only.
GGUF files do not record the FFN activation, which the straightforward metric and any ReLU study depend
on, so the caller may state it (``hidden_act``) and is warned when the architecture's default is assumed.
"""

from __future__ import annotations

import logging
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

try:  # transformers >= 5 validates configs as strict dataclasses; its errors are not ValueErrors
    from huggingface_hub.errors import StrictDataclassError
except ImportError:  # pragma: no cover - older huggingface_hub
    class StrictDataclassError(Exception):
        pass

from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.models import gguf_cache
from sparsinglaw.models.minicpm import is_minicpm, minicpm_to_granite_config, read_config_json

log = logging.getLogger("sparsinglaw.models")

# Config fields that name the FFN activation, by family (Gemma 2/3: hidden_activation; Llama & most:
# hidden_act; GPT-2/OPT: activation_function; Falcon: activation). The first present one is reported.
ACTIVATION_FIELDS = ("hidden_activation", "hidden_act", "activation_function", "activation")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# What transformers raises for unreadable, missing or unsupported checkpoints.
_LOAD_ERRORS = (
    OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError, AttributeError, EOFError,
    ArithmeticError, pickle.UnpicklingError, struct.error, SafetensorError, StrictDataclassError,
)
# Config fields holding the longest sequence a model's position embeddings cover, by family.
POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass(frozen=True)
class ModelSource:
    """Where the weights come from: ``kind`` is "gguf", "dir" or "hub"; ``target`` is what transformers gets."""

    kind: str
    target: str
    gguf_file: str | None = None


def load_model(
    spec: str | Path,
    *,
    hidden_act: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    device_map: str | dict | None = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``spec``, the model in eval mode: a hub id, a local model directory, a
    MiniCPM-format directory (mapped onto Granite) or a ``.gguf`` file (converted once). ``hidden_act``
    overrides the config's activation (GGUF does not record it)."""
    if hidden_act is not None:
        check_activation(hidden_act)
    source = resolve_source(spec)
    gguf = Path(source.target) / source.gguf_file if source.kind == "gguf" else None
    if gguf is not None and (copy := gguf_cache.cached_copy(gguf)) is not None:
        source = ModelSource("dir", str(copy))  # converted on an earlier load (models.gguf_cache)
    raw = read_config_json(Path(source.target)) if source.kind == "dir" else None
    if is_minicpm(raw):
        config = minicpm_to_granite_config(raw)
    else:
        config = _load_config(source, spec, trust_remote_code)
        require_causal_lm(config, spec, trust_remote_code)
    as_read = {field: getattr(config, field) for field in ACTIVATION_FIELDS if hasattr(config, field)}
    if hidden_act is not None:
        _warn_declared_activation(spec, hidden_act, as_read, recorded=gguf is None)
        set_activation(config, hidden_act)
    elif gguf is not None:
        field, default = activation_of(config)
        log.warning(
            "%s does not record the FFN activation; assuming the %s default %s=%r. Pass hidden_act "
            "(--hidden-act) if the model was trained with another one", spec, type(config).__name__, field, default,
        )
    if device_map is None:
        check_fits_in_memory(config, spec, dtype, trust_remote_code)
    model = _load_weights(source, spec, config, trust_remote_code, dtype, device_map)
    tokenizer = load_tokenizer(source, spec, trust_remote_code, config=config)
    if source.kind == "gguf" and dtype == torch.float32 and device_map is None:
        gguf_cache.write_copy(gguf, model, tokenizer, as_read)
    model.eval()
    return model, tokenizer


def _warn_declared_activation(spec, hidden_act: str, as_read: dict, *, recorded: bool) -> None:
    """A warning when ``--hidden-act`` overrides another activation that the model's own config records (a
    GGUF records none: its config holds the architecture's default, which the measurement's probe checks)."""
    named = next((value for value in as_read.values() if isinstance(value, str) and value), None)
    if recorded and named and named.lower() != hidden_act.lower():
        log.warning("--hidden-act %s overrides the activation %s that %s's config names; the weights were "
                    "trained with %s unless the config is wrong", hidden_act, named, spec, named)


def resolve_source(spec: str | Path) -> ModelSource:
    """Classify ``spec``; a ModelError for a missing path or a file that is not a ``.gguf``."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{text} is a file but not a .gguf; pass a model directory, a .gguf file or a hub id")
        return ModelSource("gguf", str(path.resolve().parent), path.name)
    if path.is_dir():
        return ModelSource("dir", str(path.resolve()))
    if path.suffix.lower() == ".gguf" or not _HUB_ID.match(text) or text.count("/") > 1:
        raise ModelError(f"model path {text} does not exist; check the path (or pass a hub id like org/name)")
    return ModelSource("hub", text)


def _one_line(err: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_config(source: ModelSource, spec: str | Path, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source.target, gguf_file=source.gguf_file, trust_remote_code=trust_remote_code
        )
    except _LOAD_ERRORS as err:
        raise _load_error(source, spec, err) from err


def _config_detail(err: BaseException) -> str:
    """The validator's own reason from a strict-dataclass error ("ValueError: The hidden size ...")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if len(lines) > 1 else _one_line(err)


def _load_error(source: ModelSource, spec: str | Path, err: BaseException) -> ModelError:
    """The one-line, actionable ModelError for a transformers loading failure."""
    message = str(err)
    if isinstance(err, (StrictDataclassError, ArithmeticError)):
        return ModelError(f"the model config of {spec} is invalid: {_config_detail(err)[:300]}")
    if "trust_remote_code" in message:
        return ModelError(
            f"{spec} needs its own Python code to load; review it, then pass --trust-remote-code "
            "(trust_remote_code=True)"
        )
    if source.kind == "gguf":
        return ModelError(f"cannot read GGUF file {spec}: {_one_line(err)}; is it a complete, supported GGUF?")
    if source.kind == "hub":
        return ModelError(
            f"cannot load {spec}: not a local path, and the hub gave: {_one_line(err)} "
            "(offline? set HF_HUB_OFFLINE=0 or pass a local directory)"
        )
    return ModelError(f"cannot load the model in {spec}: {_one_line(err)}")


def require_causal_lm(config: Any, spec: str | Path, trust_remote_code: bool = False) -> None:
    """A ModelError unless ``config`` describes a decoder-only causal LM (BERT, T5, ... are refused)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    architectures = list(getattr(config, "architectures", None) or [])
    remote_causal = trust_remote_code and "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    causal_names = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    causal_type = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or remote_causal
    causal_arch = not architectures or any(
        a in causal_names or a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures
    )
    if getattr(config, "is_encoder_decoder", False) or not causal_type or not causal_arch:
        described = f"{model_type}" + (f" ({', '.join(architectures)})" if architectures else "")
        raise ModelError(
            f"{spec} is a {described} model, not a decoder-only causal LM; sparsinglaw measures causal LMs "
            "(GPT-2, Llama, Mistral, Qwen, OPT, ...)"
        )


def check_activation(name: str) -> None:
    """A ConfigError unless ``name`` is an activation transformers knows (a key of ``ACT2FN``)."""
    from transformers.activations import ACT2FN

    if name not in ACT2FN:
        common = ", ".join(a for a in ("relu", "silu", "gelu", "gelu_pytorch_tanh", "relu2") if a in ACT2FN)
        raise ConfigError(f"hidden_act {name!r} is not a known activation; use one of {common}, ...")


def activation_of(config: Any) -> tuple[str, Any]:
    """``(field, value)`` of the config's activation field (``("hidden_act", None)`` when it has none)."""
    for field in ACTIVATION_FIELDS:
        if hasattr(config, field):
            return field, getattr(config, field)
    return "hidden_act", None


def set_activation(config: Any, name: str) -> None:
    """Set the FFN activation on every activation field ``config`` has."""
    fields = [field for field in ACTIVATION_FIELDS if hasattr(config, field)]
    if not fields:
        raise ModelError(f"{type(config).__name__} has no activation field to set; drop --hidden-act")
    for field in fields:
        setattr(config, field, name)


def max_positions(config: Any) -> int | None:
    """The longest sequence ``config``'s position embeddings cover, or None when it names no limit."""
    for field in POSITION_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_seq_len(model: Any, seq_len: int, option: str = "--seq-len") -> None:
    """A ConfigError when ``seq_len`` exceeds the positions ``model`` was built for (beyond them rotary models
    run silently out of distribution and learned position tables fail with an IndexError)."""
    limit = max_positions(getattr(model, "config", None))
    if limit is not None and seq_len > limit:
        raise ConfigError(f"{option} {seq_len} is beyond the model's {limit} positions; use {option} {limit} or less")


def _available_memory() -> int | None:
    """Bytes of memory available to this process (MemAvailable, capped by a cgroup limit), or None."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M).group(1)) * 1024
    except (OSError, AttributeError, ValueError):
        return None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 1 << 60:
                available = min(available, int(limit) - int(Path(usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    return available


def parameter_count(config: Any, trust_remote_code: bool = False) -> int | None:
    """Parameters of the model ``config`` describes, counted on the meta device (no memory), or None."""
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - the real load reports any problem with the config itself
        return None
    return sum(p.numel() for p in model.parameters())


def check_fits_in_memory(config: Any, spec: str | Path, dtype: torch.dtype, trust_remote_code: bool = False,
                         available: int | None = None) -> None:
    """A ModelError naming the size when the weights in ``dtype`` cannot fit in the memory available, instead
    of the allocator's traceback (or the kernel's OOM kill) part-way through the load."""
    available = _available_memory() if available is None else available
    if available is None:
        return
    count = parameter_count(config, trust_remote_code)
    if count is None:
        return
    need = count * torch.empty((), dtype=dtype).element_size()
    if need > available:
        raise ModelError(
            f"{spec} has {count / 1e9:.2f}B parameters, {need / 2**30:.1f} GiB in {str(dtype).removeprefix('torch.')}, "
            f"but only {available / 2**30:.1f} GiB of memory is available; use a smaller model, a 16-bit --dtype, "
            "or --device-map auto"
        )


def _load_weights(source, spec, config, trust_remote_code, dtype, device_map):
    """Weights into the architecture ``config`` names (Granite for MiniCPM directories)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "config": config, "dtype": dtype, "device_map": device_map, "trust_remote_code": trust_remote_code,
    }
    if source.kind == "gguf":
        kwargs["gguf_file"] = source.gguf_file
    elif source.kind == "dir" and any(Path(source.target).glob("*.safetensors")):
        kwargs["use_safetensors"] = True
    try:
        return AutoModelForCausalLM.from_pretrained(source.target, **kwargs)
    except _LOAD_ERRORS as err:
        raise _load_error(source, spec, err) from err


def load_tokenizer(source: ModelSource, spec: str | Path, trust_remote_code: bool = False, config: Any = None):
    """The tokenizer stored with the model (in the GGUF file itself for GGUF); a ModelError if there is
    none. ``config`` is the already loaded (or mapped) config."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file, "trust_remote_code": trust_remote_code}
    if source.kind != "gguf" and config is not None:
        kwargs["config"] = config
    try:
        return AutoTokenizer.from_pretrained(source.target, **kwargs)
    except _LOAD_ERRORS as err:
        raise ModelError(
            f"cannot load the tokenizer of {spec}: {_one_line(err)}; put the tokenizer files next to the weights"
        ) from err
