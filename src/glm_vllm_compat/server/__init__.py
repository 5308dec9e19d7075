"""The OpenAI-compatible GLM server.

The pure-Python core lives here and imports neither vLLM nor torch:

* :mod:`.protocol` - pydantic models of the OpenAI wire protocol as vLLM's
  server accepts it, request validation and :func:`.protocol.request_sampling_fields`.
* :mod:`.tool_parsers` - streaming GLM tool-call parsers (``glm4``, ``glm45``,
  ``glm47``) behind a lazy registry.
* :mod:`._reasoning` - ``<think>`` splitting (``glm45``, ``glm47``, ``none``).
* :mod:`._pipeline` - :class:`._pipeline.ChatOutputPipeline`, the one code path
  shared by streamed and non-streamed chat responses.
* :mod:`.families` - one :class:`~.families.GlmFamily` per GLM generation
  (detection, parsers, history dialect, thinking controls, stop tokens).
* :mod:`._chat_history` - OpenAI messages to what each GLM chat template expects
  (thin name-based lookups of the family's rules).

Importing this package is cheap: nothing is imported eagerly.
"""
