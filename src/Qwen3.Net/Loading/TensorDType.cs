namespace Qwen3.Net.Loading;

/// <summary>Element types of safetensors tensors that the forward pass can read.</summary>
internal enum TensorDType
{
    F32,
    F16,
    BF16,

    // ggml block formats (GGUF only), run by the int8 kernels in Kernels/Quantized.
    Q4_0,
    Q5_0,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
    Q3_K,
    Q2_K,
}
