namespace Qwen3.Net.Kernels.Quantized;

/// <summary>The ggml block formats the kernels read; the values are ggml's type ids (as stored in a GGUF tensor info).</summary>
internal enum QuantizedType
{
    /// <summary>32 values: f16 scale d, 16 bytes of 4-bit quants q (low nibbles first); x = d·(q − 8).</summary>
    Q4_0 = 2,

    /// <summary>32 values: f16 scale d, 32 signed bytes q; x = d·q. Also the activation format for Q8_0 and Q4_0.</summary>
    Q8_0 = 8,

    /// <summary>256 values in 8 sub-blocks of 32: f16 d and dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; x = d·sc·q − dmin·m.</summary>
    Q4_K = 12,

    /// <summary>Q4_K with a fifth bit per value in 32 bytes of high bits (qh before qs).</summary>
    Q5_K = 13,

    /// <summary>256 values in 16 groups of 16: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed 8-bit scales, f16 d; x = d·sc·(q − 32).</summary>
    Q6_K = 14,

    /// <summary>256 values: f32 d, 256 signed bytes, 16 int16 sums of each 16 quants. Activations only (for the K formats).</summary>
    Q8_K = 15,
}

/// <summary>Block sizes of the <see cref="QuantizedType"/> formats, as ggml-common.h defines them.</summary>
internal static class QuantizedFormat
{
    /// <summary>Values in a Q8_0 / Q4_0 block.</summary>
    public const int SmallBlock = 32;

    /// <summary>Values in a K-format super-block.</summary>
    public const int SuperBlock = 256;

    // The enum's values are ggml's type ids, so the sizes come from the one ggml type table the GGUF reader checks with.
    public static int BlockValues(QuantizedType type) => Loading.Gguf.GgmlTypes.BlockSize(Ggml(type));

    public static int BlockBytes(QuantizedType type) => Loading.Gguf.GgmlTypes.BytesPerBlock(Ggml(type));

    private static Loading.Gguf.GgmlType Ggml(QuantizedType type) => Enum.IsDefined(type)
        ? (Loading.Gguf.GgmlType)(int)type
        : throw new ArgumentOutOfRangeException(nameof(type), type, "not a supported ggml block format");

    /// <summary>The format ggml quantizes the activations to for a dot product with <paramref name="weights"/> (its vec_dot_type).</summary>
    public static QuantizedType ActivationType(QuantizedType weights) => weights switch
    {
        QuantizedType.Q4_0 or QuantizedType.Q8_0 => QuantizedType.Q8_0,
        QuantizedType.Q4_K or QuantizedType.Q5_K or QuantizedType.Q6_K => QuantizedType.Q8_K,
        _ => throw new ArgumentOutOfRangeException(nameof(weights), weights, "not a weight format"),
    };

    /// <summary>The block format of a tensor element type, or null for the plain types (F32, F16, BF16).</summary>
    public static QuantizedType? FromTensorType(Loading.TensorDType type) => type switch
    {
        Loading.TensorDType.Q4_0 => QuantizedType.Q4_0,
        Loading.TensorDType.Q8_0 => QuantizedType.Q8_0,
        Loading.TensorDType.Q4_K => QuantizedType.Q4_K,
        Loading.TensorDType.Q5_K => QuantizedType.Q5_K,
        Loading.TensorDType.Q6_K => QuantizedType.Q6_K,
        _ => null,
    };

    /// <summary>Whether <paramref name="type"/> is a weight format the kernels multiply.</summary>
    public static bool IsWeightType(QuantizedType type) =>
        type is QuantizedType.Q4_0 or QuantizedType.Q8_0 or QuantizedType.Q4_K or QuantizedType.Q5_K or QuantizedType.Q6_K;

    /// <summary>Bytes of one row of <paramref name="columns"/> values; the columns must fill whole blocks.</summary>
    public static long RowBytes(QuantizedType type, int columns)
    {
        int values = BlockValues(type);
        if (columns <= 0 || columns % values != 0)
        {
            throw new ArgumentException($"{type} rows hold whole blocks of {values} values; {columns} columns do not.", nameof(columns));
        }

        return (long)(columns / values) * BlockBytes(type);
    }
}
