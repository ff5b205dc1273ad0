using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// Activations quantized once per product, as ggml's vec_dot_type (Q8_0 or Q8_K) with the same values as
/// <see cref="QuantizedReference"/> but split for the kernels: each token's quants contiguous, the block scales as
/// float32 (Q8_0's f16 scale already widened), Q8_K's sums of 16 quants, and Q8_0's −128·Σq per block (weights biased
/// to unsigned bytes for vpdpbusd, in the prompt tile and the AVX-VNNI decode, add 128·Σq to each block's integer sum,
/// which starts from this instead). Q8_K may also hold each token's quants in <see cref="NibbleQuants"/>' order.
/// </summary>
internal readonly unsafe struct QuantizedActivations
{
    public readonly sbyte* Quants;
    public readonly float* Scales;
    /// <summary>Q8_K: a short per 16 quants; Q8_0: an int per block (<see cref="TokenOffsets"/>).</summary>
    public readonly short* Sums;
    public readonly int Columns;
    public readonly int BlockValues;

    /// <summary>
    /// Q8_K for the one-token Q4_K and Q5_K kernel at 512 bits, else null: the quants again with each 128 in the order
    /// 0–31, 64–95, 32–63, 96–127, so that one 64-byte load of a super-block's nibbles holds the quants of 64 of them
    /// in the low nibbles and of the other 64 in the high ones.
    /// </summary>
    public readonly sbyte* NibbleQuants;

    // Blocks per token, kept so the kernels' per-row TokenScales calls do not divide (an idiv per row and token group).
    private readonly int _blocks;

    public QuantizedActivations(sbyte* quants, float* scales, short* sums, int columns, int blockValues, sbyte* nibbleQuants = null)
    {
        NibbleQuants = nibbleQuants;
        Quants = quants;
        Scales = scales;
        Sums = sums;
        Columns = columns;
        BlockValues = blockValues;
        _blocks = columns / blockValues;
    }

    public sbyte* TokenQuants(int token) => Quants + (long)token * Columns;

    /// <summary>The token's quants in <see cref="NibbleQuants"/>' order.</summary>
    /// <exception cref="InvalidOperationException">These activations were quantized without that order.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public sbyte* TokenNibbleQuants(int token) => NibbleQuants != null ? NibbleQuants + (long)token * Columns : NoNibbleOrder();

    // Out of line, so that the accessor above inlines into the kernels.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static sbyte* NoNibbleOrder() =>
        throw new InvalidOperationException("The activations lack the nibble order their product needs (QuantizedMatMul.TakesNibbleOrder).");

    public float* TokenScales(int token) => Scales + (long)token * _blocks;

    public short* TokenSums(int token) => Sums + (long)token * (Columns / 16);

    /// <summary>Q8_0: −128·Σq of each block of the token, in the space <see cref="TokenSums"/> takes for Q8_K.</summary>
    public int* TokenOffsets(int token) => (int*)Sums + (long)token * _blocks;

    /// <summary>The pointers of four tokens from <paramref name="first"/>; past the <paramref name="count"/> real ones the last repeats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TokenGroup Group(int first, int count) => new(this, first, count);
}

/// <summary>The quants, block scales and Q8_K sums of 16 (or Q8_0 block offsets) of four tokens, as a kernel sharing each weight load reads them.</summary>
internal readonly unsafe struct TokenGroup
{
    public readonly sbyte* Quants0, Quants1, Quants2, Quants3;
    public readonly float* Scales0, Scales1, Scales2, Scales3;
    public readonly short* Sums0, Sums1, Sums2, Sums3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TokenGroup(in QuantizedActivations a, int first, int count)
    {
        int t1 = first + Math.Min(1, count - 1), t2 = first + Math.Min(2, count - 1), t3 = first + Math.Min(3, count - 1);
        Quants0 = a.TokenQuants(first);
        Quants1 = a.TokenQuants(t1);
        Quants2 = a.TokenQuants(t2);
        Quants3 = a.TokenQuants(t3);
        Scales0 = a.TokenScales(first);
        Scales1 = a.TokenScales(t1);
        Scales2 = a.TokenScales(t2);
        Scales3 = a.TokenScales(t3);
        Sums0 = a.TokenSums(first);
        Sums1 = a.TokenSums(t1);
        Sums2 = a.TokenSums(t2);
        Sums3 = a.TokenSums(t3);
    }

    /// <summary>Q8_0: the tokens' −128·Σq per block (<see cref="QuantizedActivations.TokenOffsets"/>), where Q8_K's sums are.</summary>
    public int* Offsets0 => (int*)Sums0;

    /// <inheritdoc cref="Offsets0"/>
    public int* Offsets1 => (int*)Sums1;

    /// <inheritdoc cref="Offsets0"/>
    public int* Offsets2 => (int*)Sums2;

    /// <inheritdoc cref="Offsets0"/>
    public int* Offsets3 => (int*)Sums3;
}

/// <summary>The vectorized activation quantizers, and a per-thread buffer to hold their output.</summary>
internal static unsafe class ActivationQuantizer
{
    /// <summary>Buffers of the calling thread, grown as needed and kept: a forward pass allocates nothing once warm.</summary>
    [ThreadStatic]
    private static byte[]? t_q8_0, t_q8_K;

    /// <summary>
    /// Quantizes <paramref name="tokens"/> rows of <paramref name="columns"/> floats to <paramref name="type"/> in this
    /// thread's buffer, Q8_K with <see cref="QuantizedActivations.NibbleQuants"/> too if <paramref name="nibbleOrder"/>.
    /// </summary>
    public static QuantizedActivations Quantize(GgmlType type, float* x, int tokens, int columns, bool nibbleOrder = false)
    {
        nibbleOrder &= type == GgmlType.Q8_K;
        int blockValues = GgmlTypes.BlockSize(type);
        if (columns % blockValues != 0)
        {
            throw new ArgumentException($"{type} activations need whole blocks of {blockValues} values; {columns} columns do not.", nameof(columns));
        }

        // Per token: the quants, one float per block, and one short per 16 quants (Q8_K) or int per 32 (Q8_0), each region 64-byte aligned.
        long quantBytes = Align((long)tokens * columns), scaleBytes = Align((long)tokens * (columns / blockValues) * 4);
        long sumBytes = Align((long)tokens * (columns / 16) * 2);
        long size = quantBytes + scaleBytes + sumBytes + (nibbleOrder ? quantBytes : 0) + 64;
        if (size > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), $"{tokens} tokens of {columns} columns are too many to quantize in one buffer.");
        }

        ref byte[]? buffer = ref type == GgmlType.Q8_0 ? ref t_q8_0 : ref t_q8_K;
        if (buffer is null || buffer.Length < size)
        {
            buffer = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, size + size / 4), pinned: true);
        }

        byte* start = (byte*)(((nint)Unsafe.AsPointer(ref buffer[0]) + 63) & ~(nint)63);
        var result = new QuantizedActivations(
            (sbyte*)start, (float*)(start + quantBytes), (short*)(start + quantBytes + scaleBytes), columns, blockValues,
            nibbleOrder ? (sbyte*)(start + quantBytes + scaleBytes + sumBytes) : null);
        for (int t = 0; t < tokens; t++)
        {
            float* row = x + (long)t * columns;
            if (type == GgmlType.Q8_0)
            {
                for (int b = 0; b < columns / 32; b++)
                {
                    result.TokenScales(t)[b] = BlockQ8_0(row + 32 * b, result.TokenQuants(t) + 32 * b, out result.TokenOffsets(t)[b]);
                }
            }
            else
            {
                for (int b = 0; b < columns / 256; b++)
                {
                    result.TokenScales(t)[b] = BlockQ8_K(row + 256 * b, result.TokenQuants(t) + 256 * b, result.TokenSums(t) + 16 * b);
                    if (nibbleOrder)
                    {
                        NibbleOrder(result.TokenQuants(t) + 256 * b, result.TokenNibbleQuants(t) + 256 * b);
                    }
                }
            }
        }

        return result;
    }

    private static long Align(long bytes) => (bytes + 63) & ~63L;

    /// <summary>A super-block's 256 quants in <see cref="QuantizedActivations.NibbleQuants"/>' order.</summary>
    private static void NibbleOrder(sbyte* quants, sbyte* destination)
    {
        for (int i = 0; i < 256; i += 128)
        {
            Vector256.Load(quants + i).Store(destination + i);
            Vector256.Load(quants + i + 64).Store(destination + i + 32);
            Vector256.Load(quants + i + 32).Store(destination + i + 64);
            Vector256.Load(quants + i + 96).Store(destination + i + 96);
        }
    }

    /// <summary>quantize_row_q8_0_ref on one block: returns the f16-rounded scale; quants round half away from zero.</summary>
    private static float BlockQ8_0(float* x, sbyte* quants, out int offset)
    {
        Vector128<float> max = Vector128<float>.Zero;
        for (int i = 0; i < 32; i += 4)
        {
            max = Vector128.Max(max, Vector128.Abs(Vector128.Load(x + i)));
        }

        float amax = MathF.Max(MathF.Max(max[0], max[1]), MathF.Max(max[2], max[3]));
        float d = amax / 127;
        var id = Vector128.Create(d != 0 ? 1.0f / d : 0.0f);
        Vector128<int> sum = Vector128<int>.Zero;
        for (int i = 0; i < 32; i += 16)
        {
            Vector128<int> q0 = RoundAway(Vector128.Load(x + i) * id), q1 = RoundAway(Vector128.Load(x + i + 4) * id);
            Vector128<int> q2 = RoundAway(Vector128.Load(x + i + 8) * id), q3 = RoundAway(Vector128.Load(x + i + 12) * id);
            Vector128.Narrow(Vector128.Narrow(q0, q1), Vector128.Narrow(q2, q3)).Store(quants + i);
            sum += StoredByte(q0) + StoredByte(q1) + StoredByte(q2) + StoredByte(q3);
        }

        offset = -128 * Vector128.Sum(sum);
        return (float)(Half)d;
    }

    /// <summary>quantize_row_q8_K_ref on one super-block: scale −127/max, round half to even, capped at 127; returns d.</summary>
    private static float BlockQ8_K(float* x, sbyte* quants, short* sums)
    {
        Vector128<float> max = Vector128<float>.Zero;
        for (int i = 0; i < 256; i += 4)
        {
            max = Vector128.Max(max, Vector128.Abs(Vector128.Load(x + i)));
        }

        float amax = MathF.Max(MathF.Max(max[0], max[1]), MathF.Max(max[2], max[3]));
        if (amax == 0)
        {
            new Span<byte>(quants, 256).Clear();
            new Span<short>(sums, 16).Clear();
            return 0;
        }

        // ggml takes the first value of largest magnitude, whose sign sets the scale's.
        float signedMax = amax;
        for (int i = 0; i < 256; i += 4)
        {
            uint hits = Vector128.Equals(Vector128.Abs(Vector128.Load(x + i)), Vector128.Create(amax)).ExtractMostSignificantBits();
            if (hits != 0)
            {
                signedMax = x[i + System.Numerics.BitOperations.TrailingZeroCount(hits)];
                break;
            }
        }

        float iscale = -127f / signedMax;
        var scale = Vector128.Create(iscale);
        var cap = Vector128.Create(127);
        for (int g = 0; g < 16; g++)
        {
            float* v = x + 16 * g;
            Vector128<int> q0 = Vector128.Min(cap, Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(v) * scale)));
            Vector128<int> q1 = Vector128.Min(cap, Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(v + 4) * scale)));
            Vector128<int> q2 = Vector128.Min(cap, Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(v + 8) * scale)));
            Vector128<int> q3 = Vector128.Min(cap, Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(v + 12) * scale)));
            Vector128.Narrow(Vector128.Narrow(q0, q1), Vector128.Narrow(q2, q3)).Store(quants + 16 * g);
            sums[g] = (short)Vector128.Sum(q0 + q1 + q2 + q3);
        }

        return 1 / iscale;
    }

    /// <summary>The quant as Narrow stores it (its low byte), so that the offset matches the bytes even where x was not finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> StoredByte(Vector128<int> q) => Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(q, 24), 24);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> RoundAway(Vector128<float> v)
    {
        Vector128<float> whole = Vector128.Truncate(v);
        Vector128<float> step = Vector128.ConditionalSelect(Vector128.LessThan(v, Vector128<float>.Zero), Vector128.Create(-1f), Vector128.Create(1f));
        Vector128<float> rounded = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(Vector128.Abs(v - whole), Vector128.Create(0.5f)), whole + step, whole);
        return Vector128.ConvertToInt32(rounded);
    }
}
