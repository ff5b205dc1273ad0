namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// Tensor element types as ggml numbers them (<c>enum ggml_type</c>); the numbers are stored in GGUF files. The block
/// formats the int8 kernels read are described on their members (Kernels/Quantized/QuantizedFormat.cs says which).
/// </summary>
internal enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    /// <summary>32 values: f16 scale d, 16 bytes of 4-bit quants q (low nibbles first); x = d·(q − 8).</summary>
    Q4_0 = 2,
    Q4_1 = 3,
    /// <summary>32 values: f16 scale d, 32 high bits qh (little-endian; bit j for value j), 16 bytes of 4-bit quants as Q4_0; x = d·(q − 16).</summary>
    Q5_0 = 6,
    Q5_1 = 7,
    /// <summary>32 values: f16 scale d, 32 signed bytes q; x = d·q. Also the activation format for Q8_0 and Q4_0.</summary>
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    /// <summary>256 values in 8 sub-blocks of 32: f16 d and dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; x = d·sc·q − dmin·m.</summary>
    Q4_K = 12,
    /// <summary>Q4_K with a fifth bit per value in 32 bytes of high bits (qh before qs).</summary>
    Q5_K = 13,
    /// <summary>256 values in 16 groups of 16: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed 8-bit scales, f16 d; x = d·sc·(q − 32).</summary>
    Q6_K = 14,
    /// <summary>256 values: f32 d, 256 signed bytes, 16 int16 sums of each 16 quants. Activations only (for the K formats).</summary>
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>
/// The storage layout of each <see cref="GgmlType"/>: a row of n values is n / BlockSize blocks of BytesPerBlock bytes
/// (ggml's <c>blck_size</c> and <c>type_size</c>); plain types are blocks of one value.
/// </summary>
internal static class GgmlTypes
{
    /// <summary>Values per block in the super-block ("K") types.</summary>
    public const int SuperBlock = 256;

    /// <summary>Values per block in the legacy types (Q4_0 … Q8_1).</summary>
    public const int LegacyBlock = 32;

    /// <summary>Whether ggml defines <paramref name="type"/> and this table knows its layout.</summary>
    public static bool IsKnown(GgmlType type) => BlockSizeOrZero(type) != 0;

    /// <summary>Values per block.</summary>
    public static int BlockSize(GgmlType type) => BlockSizeOrZero(type) is int n and > 0
        ? n
        : throw new ArgumentOutOfRangeException(nameof(type), type, "Not a ggml type this table knows.");

    /// <summary>Bytes per block.</summary>
    public static int BytesPerBlock(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.I32 => 4,
        GgmlType.F16 or GgmlType.BF16 or GgmlType.I16 => 2,
        GgmlType.I8 => 1,
        GgmlType.I64 or GgmlType.F64 => 8,
        GgmlType.Q4_0 => 2 + 16,                  // f16 d, 32 × 4-bit
        GgmlType.Q4_1 => 2 + 2 + 16,              // f16 d, f16 m, 32 × 4-bit
        GgmlType.Q5_0 => 2 + 4 + 16,              // f16 d, 32 high bits, 32 × 4-bit
        GgmlType.Q5_1 => 2 + 2 + 4 + 16,          // f16 d, f16 m, 32 high bits, 32 × 4-bit
        GgmlType.Q8_0 => 2 + 32,                  // f16 d, 32 × int8
        GgmlType.Q8_1 => 2 + 2 + 32,              // f16 d, f16 d·Σq, 32 × int8
        GgmlType.Q2_K => 16 + 64 + 2 + 2,         // 4-bit scales/mins, 256 × 2-bit, f16 d, f16 dmin
        GgmlType.Q3_K => 32 + 64 + 12 + 2,        // high bits, 256 × 2-bit, 6-bit scales, f16 d
        GgmlType.Q4_K => 2 + 2 + 12 + 128,        // f16 d, f16 dmin, 6-bit scales/mins, 256 × 4-bit
        GgmlType.Q5_K => 2 + 2 + 12 + 32 + 128,   // as Q4_K plus 256 high bits
        GgmlType.Q6_K => 128 + 64 + 16 + 2,       // low 4 bits, high 2 bits, int8 scales, f16 d
        GgmlType.Q8_K => 4 + 256 + 32,            // f32 d, 256 × int8, 16 × i16 block sums
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a ggml type this table knows."),
    };

    /// <summary>Whether values are stored in blocks with shared scales rather than one by one.</summary>
    public static bool IsQuantized(GgmlType type) => BlockSize(type) > 1;

    /// <summary>Bytes of a row of <paramref name="columns"/> values; <paramref name="columns"/> must be a whole number of blocks.</summary>
    public static long RowBytes(GgmlType type, long columns)
    {
        int block = BlockSize(type);
        if (columns % block != 0)
        {
            throw new ArgumentException($"A {type} row holds whole blocks of {block} values; {columns} is not a multiple.", nameof(columns));
        }

        return checked(columns / block * BytesPerBlock(type));
    }

    static int BlockSizeOrZero(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.I8 or GgmlType.I16 or GgmlType.I32 or GgmlType.I64 or GgmlType.F64 => 1,
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.Q8_1 => LegacyBlock,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K => SuperBlock,
        _ => 0,
    };
}
