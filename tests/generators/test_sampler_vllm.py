import pytest
import torch

from distillery.generators.base import SamplingError
from distillery.generators.sampler_vllm import require_cuda


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_vllm_backend_refuses_without_cuda_and_never_imports_vllm():
    import sys

    with pytest.raises(SamplingError, match="needs a CUDA GPU; use --backend transformers"):
        require_cuda()
    assert "vllm" not in sys.modules
