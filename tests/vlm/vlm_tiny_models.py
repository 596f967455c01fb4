"""Tiny random-initialised VLMs (Qwen2-VL and LLaVA families) and a tiny byte-level BPE tokenizer,
saved to a folder the way a downloaded checkpoint is, for the transformers backend's tests.

No weights exist offline; these test the loading and generation contract (images in, tokens out),
not quality.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "What is the capital of France? The capital of France is Paris.",
    "Describe the image. A red square on a blue background, a cat and a dog.",
    "You are a helpful assistant. Answer with citations like [E1].",
    '{"answer": "yes", "count": 3}',
] * 4

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ IMAGE }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def chat_template(image_markup: str) -> str:
    return CHATML.replace("{{ IMAGE }}", image_markup)


def tiny_tokenizer(specials: list[str], vocab_size: int = 400):
    """A byte-level BPE (any text encodes) trained on a few sentences, with ``specials`` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )


def _text_config(vocab_size: int, tokenizer, layers: int = 2) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.pad_token_id,
    )


def build_tiny_qwen2vl(path: Path, *, layers: int = 2, max_pixels: int = 112 * 112) -> Path:
    """A ``layers``-layer Qwen2-VL (hidden 64, vision depth 2) with a 400-token vocabulary, saved to
    ``path``; its processor resizes images to at most ``max_pixels`` (112 x 112: 16 visual tokens)."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
    tokenizer = tiny_tokenizer(specials)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    text = _text_config(len(tokenizer), tokenizer, layers)
    text["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=64,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            in_channels=3,
        ),  # fmt: skip
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_pixels, patch_size=14, merge_size=2)
    processor = Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(min_pixels=56 * 56, max_pixels=max_pixels),
        chat_template=chat_template("<|vision_start|><|image_pad|><|vision_end|>"),
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llava(path: Path) -> Path:
    """A LLaVA with a 2-layer CLIP vision tower (32 px, patch 8) and a 2-layer Llama, saved to ``path``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = tiny_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"])
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)  # fmt: skip
    config = LlavaConfig(
        vision_config=vision,
        text_config=LlamaConfig(**_text_config(len(tokenizer), tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template("<image>"),
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llama(path: Path) -> Path:
    """A 2-layer text-only Llama with the tiny tokenizer and a ChatML template, saved to ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer.chat_template = chat_template("")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**_text_config(len(tokenizer), tokenizer))).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
