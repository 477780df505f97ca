"""The dtype choices of the frozen Embedding LLM, as every command spells them (torch-free, for --help).

`embedder.model.resolve_dtype` turns a choice into a torch dtype for a device."""

DTYPE_CHOICES = ("auto", "fp32", "bf16")
DTYPE_HELP = ("the frozen Embedding LLM's dtype: auto (default) is bf16 on CUDA and on a CPU with native bf16 "
              "(AVX512-BF16 or AMX: about 2x fp32's speed, vectors at cosine >= 0.999 to fp32), else fp32; "
              "PROMPTEMBEDDER_DTYPE=fp32 sets what auto means for a whole process")
