using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// Which of ggml's block formats (<see cref="GgmlType"/>, laid out by <see cref="GgmlTypes"/>) the int8 kernels read:
/// the weight formats and the activation format each is multiplied with.
/// </summary>
internal static class QuantizedFormat
{
    /// <summary>The format ggml quantizes the activations to for a dot product with <paramref name="weights"/> (its vec_dot_type).</summary>
    public static GgmlType ActivationType(GgmlType weights) => weights switch
    {
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => GgmlType.Q8_0,
        _ when IsSuperBlock(weights) => GgmlType.Q8_K,
        _ => throw new ArgumentOutOfRangeException(nameof(weights), weights, "not a weight format"),
    };

    /// <summary>The block format of a tensor element type, or null for the plain types (F32, F16, BF16).</summary>
    public static GgmlType? FromTensorType(TensorDType type) => type switch
    {
        TensorDType.Q4_0 => GgmlType.Q4_0,
        TensorDType.Q5_0 => GgmlType.Q5_0,
        TensorDType.Q8_0 => GgmlType.Q8_0,
        TensorDType.Q4_K => GgmlType.Q4_K,
        TensorDType.Q5_K => GgmlType.Q5_K,
        TensorDType.Q6_K => GgmlType.Q6_K,
        TensorDType.Q3_K => GgmlType.Q3_K,
        TensorDType.Q2_K => GgmlType.Q2_K,
        _ => null,
    };

    /// <summary>Whether <paramref name="type"/> is a weight format the kernels multiply.</summary>
    public static bool IsWeightType(GgmlType type) =>
        IsSmallBlock(type) || IsSuperBlock(type);

    /// <summary>Whether <paramref name="type"/> is one of the 32-value block formats of signed quants and one f16 scale (Q8_0, Q4_0, Q5_0).</summary>
    public static bool IsSmallBlock(GgmlType type) => type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0;

    /// <summary>Whether <paramref name="type"/> is one of the 256-value K formats the kernels read (Q2_K to Q6_K), multiplied with Q8_K.</summary>
    public static bool IsSuperBlock(GgmlType type) => type is GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;
}
