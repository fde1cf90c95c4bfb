"""The reader model's weights and model card (``reader.safetensors``, ``reader.json``)."""
