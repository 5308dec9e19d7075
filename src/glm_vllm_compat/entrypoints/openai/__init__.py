"""``python -m glm_vllm_compat.entrypoints.openai.api_server``: see :mod:`.api_server`."""
