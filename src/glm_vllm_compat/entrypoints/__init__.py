"""Module paths mirroring vLLM's, for command lines written as ``python -m vllm.entrypoints...``."""
