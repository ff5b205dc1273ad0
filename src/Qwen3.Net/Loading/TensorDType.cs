namespace Qwen3.Net.Loading;

/// <summary>Element types of safetensors tensors that the forward pass can read.</summary>
internal enum TensorDType
{
    F32,
    F16,
    BF16,
}
