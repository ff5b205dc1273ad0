using System.Buffers.Binary;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// The ggml block formats one value at a time, with ggml's own arithmetic (ggml-quants.c): dequantization equal to
/// ggml's bit for bit, the activation quantizers of its reference path (quantize_row_q8_0_ref, quantize_row_q8_K_ref),
/// and the dot products the fast kernels are tested against. Blocks are read through spans, so a short buffer throws.
/// </summary>
internal static class QuantizedReference
{
    /// <summary>Widens whole blocks of <paramref name="type"/> to float32: destination.Length values.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> blocks, Span<float> destination)
    {
        int values = GgmlTypes.BlockSize(type);
        int bytes = GgmlTypes.BytesPerBlock(type);
        if (destination.Length % values != 0 || blocks.Length < (long)destination.Length / values * bytes)
        {
            throw new ArgumentException($"{destination.Length} values of {type} need whole blocks of {values} and {destination.Length / values * bytes} bytes; got {blocks.Length}.");
        }

        for (int b = 0; b < destination.Length / values; b++)
        {
            ReadOnlySpan<byte> block = blocks.Slice(b * bytes, bytes);
            Span<float> y = destination.Slice(b * values, values);
            switch (type)
            {
                case GgmlType.Q8_0: DequantizeQ8_0(block, y); break;
                case GgmlType.Q4_0: DequantizeQ4_0(block, y); break;
                case GgmlType.Q5_0: DequantizeQ5_0(block, y); break;
                case GgmlType.Q4_K: DequantizeQ4_K(block, y); break;
                case GgmlType.Q5_K: DequantizeQ5_K(block, y); break;
                case GgmlType.Q6_K: DequantizeQ6_K(block, y); break;
                case GgmlType.Q3_K: DequantizeQ3_K(block, y); break;
                case GgmlType.Q2_K: DequantizeQ2_K(block, y); break;
                default: DequantizeQ8_K(block, y); break;
            }
        }
    }

    /// <summary>quantize_row_q8_0_ref: d = max|x|/127 rounded to f16, q = round(x/d) half away from zero.</summary>
    public static void QuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        CheckQuantize(x, blocks, GgmlType.Q8_0);
        for (int b = 0; b < x.Length / 32; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * 32, 32);
            Span<byte> block = blocks.Slice(b * 34, 34);
            float amax = 0;
            foreach (float value in v)
            {
                amax = MathF.Max(amax, MathF.Abs(value));
            }

            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(block, BitConverter.HalfToUInt16Bits((Half)d));
            for (int j = 0; j < 32; j++)
            {
                block[2 + j] = (byte)(sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }

    /// <summary>quantize_row_q8_K_ref: scale −127/max (max = the value of largest magnitude), round half to even, sums of 16.</summary>
    public static void QuantizeQ8_K(ReadOnlySpan<float> x, Span<byte> blocks)
    {
        CheckQuantize(x, blocks, GgmlType.Q8_K);
        for (int b = 0; b < x.Length / 256; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * 256, 256);
            Span<byte> block = blocks.Slice(b * 292, 292);
            block.Clear();
            float max = 0, amax = 0;
            foreach (float value in v)
            {
                if (MathF.Abs(value) > amax)
                {
                    amax = MathF.Abs(value);
                    max = value;
                }
            }

            if (amax == 0)
            {
                continue;
            }

            float iscale = -127f / max;
            for (int j = 0; j < 256; j++)
            {
                block[4 + j] = (byte)(sbyte)Math.Min(127, (int)MathF.Round(iscale * v[j], MidpointRounding.ToEven));
            }

            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int j = 0; j < 16; j++)
                {
                    sum += (sbyte)block[4 + g * 16 + j];
                }

                BinaryPrimitives.WriteInt16LittleEndian(block.Slice(260 + 2 * g), (short)sum);
            }

            BinaryPrimitives.WriteSingleLittleEndian(block, 1 / iscale);
        }
    }

    /// <summary>
    /// Σ w·a over one row of <paramref name="columns"/> values: <paramref name="weights"/> in <paramref name="type"/>,
    /// <paramref name="activations"/> in its <see cref="QuantizedFormat.ActivationType"/>. Each block's integer sum is
    /// exact and so is its float term: (d_w·d_a)·Σq·a for Q8_0, and for the K formats d_w·d_a·Σ sc·q·a − dmin_w·d_a·Σ m·bsum.
    /// The terms are summed in four partial sums, block (or super-block) b's into partial b mod 4 in row order, and the
    /// row's result is (p0 + p1) + (p2 + p3): the order in which the kernels add four blocks' terms as one vector.
    /// </summary>
    public static float Dot(GgmlType type, ReadOnlySpan<byte> weights, ReadOnlySpan<byte> activations, int columns)
    {
        GgmlType actType = QuantizedFormat.ActivationType(type);
        int values = GgmlTypes.BlockSize(type);
        if (weights.Length < GgmlTypes.RowBytes(type, columns) || activations.Length < GgmlTypes.RowBytes(actType, columns))
        {
            throw new ArgumentException($"a {type} row of {columns} columns needs {GgmlTypes.RowBytes(type, columns)} weight and {GgmlTypes.RowBytes(actType, columns)} activation bytes.");
        }

        int wBytes = GgmlTypes.BytesPerBlock(type), aBytes = GgmlTypes.BytesPerBlock(actType);
        Span<float> partials = stackalloc float[4];
        partials.Clear();
        for (int b = 0; b < columns / values; b++)
        {
            ReadOnlySpan<byte> w = weights.Slice(b * wBytes, wBytes);
            ReadOnlySpan<byte> a = activations.Slice(b * aBytes, aBytes);
            partials[b % 4] += type switch
            {
                GgmlType.Q8_0 => BlockDotQ8_0(w, a),
                GgmlType.Q4_0 => BlockDotQ4_0(w, a),
                GgmlType.Q5_0 => BlockDotQ5_0(w, a),
                GgmlType.Q6_K => BlockDotQ6_K(w, a),
                GgmlType.Q3_K => BlockDotQ3_K(w, a),
                GgmlType.Q2_K => BlockDotQ2_K(w, a),
                _ => BlockDotQ45_K(type, w, a),
            };
        }

        return (partials[0] + partials[1]) + (partials[2] + partials[3]);
    }

    /// <summary>The 6-bit scale and min of sub-block <paramref name="j"/> (0–7) of a Q4_K/Q5_K block (ggml's get_scale_min_k4).</summary>
    public static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> scales) => j < 4
        ? (scales[j] & 63, scales[j + 4] & 63)
        : ((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));

    /// <summary>Quant v (0–255) of a Q4_K block's nibbles: 32-byte chunks, low nibbles holding the first 32 values of each 64.</summary>
    public static int NibbleQ4_K(ReadOnlySpan<byte> qs, int v) => (qs[32 * (v / 64) + v % 32] >> (4 * ((v / 32) & 1))) & 0xF;

    /// <summary>Quant v (0–255, 0–63 before the −32) of a Q6_K block.</summary>
    public static int QuantQ6_K(ReadOnlySpan<byte> block, int v)
    {
        int half = v / 128, quarter = v % 128 / 32, l = v % 32;
        int low = (block[64 * half + l + 32 * (quarter & 1)] >> (4 * (quarter >> 1))) & 0xF;
        int high = (block[128 + 32 * half + l] >> (2 * quarter)) & 3;
        return low | (high << 4);
    }

    private static void CheckQuantize(ReadOnlySpan<float> x, Span<byte> blocks, GgmlType type)
    {
        if (blocks.Length < GgmlTypes.RowBytes(type, x.Length))
        {
            throw new ArgumentException($"{x.Length} values quantized to {type} need {GgmlTypes.RowBytes(type, x.Length)} bytes; got {blocks.Length}.");
        }
    }

    private static float HalfAt(ReadOnlySpan<byte> block, int offset) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(block.Slice(offset)));

    private static void DequantizeQ8_0(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 0);
        for (int j = 0; j < 32; j++)
        {
            y[j] = (sbyte)block[2 + j] * d;
        }
    }

    private static void DequantizeQ4_0(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 0);
        for (int j = 0; j < 16; j++)
        {
            y[j] = ((block[2 + j] & 0xF) - 8) * d;
            y[j + 16] = ((block[2 + j] >> 4) - 8) * d;
        }
    }

    private static void DequantizeQ5_0(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 0);
        for (int j = 0; j < 32; j++)
        {
            y[j] = QuantQ5_0(block, j) * d;
        }
    }

    /// <summary>Quant j (0–31) of a Q5_0 block, after the −16: its nibble (low for 0–15, high for 16–31) and bit j of qh as the fifth bit.</summary>
    public static int QuantQ5_0(ReadOnlySpan<byte> block, int j)
    {
        int nibble = (block[6 + j % 16] >> (4 * (j / 16))) & 0xF;
        int high = (int)(BinaryPrimitives.ReadUInt32LittleEndian(block.Slice(2)) >> j) & 1;
        return (nibble | (high << 4)) - 16;
    }

    private static void DequantizeQ4_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 0), min = HalfAt(block, 2);
        ReadOnlySpan<byte> scales = block.Slice(4, 12), qs = block.Slice(16, 128);
        for (int v = 0; v < 256; v++)
        {
            (int sc, int m) = ScaleMinK4(v / 32, scales);
            y[v] = d * sc * NibbleQ4_K(qs, v) - min * m;
        }
    }

    private static void DequantizeQ5_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 0), min = HalfAt(block, 2);
        ReadOnlySpan<byte> scales = block.Slice(4, 12), qh = block.Slice(16, 32), qs = block.Slice(48, 128);
        for (int v = 0; v < 256; v++)
        {
            (int sc, int m) = ScaleMinK4(v / 32, scales);
            y[v] = d * sc * (NibbleQ4_K(qs, v) + HighBitQ5_K(qh, v)) - min * m;
        }
    }

    private static int HighBitQ5_K(ReadOnlySpan<byte> qh, int v) => ((qh[v % 32] >> (v / 32)) & 1) << 4;

    /// <summary>
    /// Quant v (0–255, 0–7 before the −4) of a Q3_K block: its two low bits from the 64 bytes at 32 (each half of 128
    /// quants has 32 bytes, quarter k in bits 2k), its third from the 32 bytes of hmask (bit 4·half + quarter).
    /// </summary>
    public static int QuantQ3_K(ReadOnlySpan<byte> block, int v)
    {
        int half = v / 128, quarter = v % 128 / 32, l = v % 32;
        int low = (block[32 + 32 * half + l] >> (2 * quarter)) & 3;
        int high = (block[l] >> (4 * half + quarter)) & 1;
        return low | (high << 2);
    }

    /// <summary>
    /// Scale g (0–15) of a Q3_K block, −32…31: six bits, the low four from the first 8 of its 12 bytes (low nibbles for
    /// 0–7, high for 8–15), the top two from bytes 8–11 (byte 8 + g % 4, bits 2·(g / 4)), as ggml's dequantize_row_q3_K unpacks them.
    /// </summary>
    public static int ScaleQ3_K(ReadOnlySpan<byte> block, int g)
    {
        ReadOnlySpan<byte> scales = block.Slice(96, 12);
        int low = (scales[g % 8] >> (4 * (g / 8))) & 0xF;
        int high = (scales[8 + g % 4] >> (2 * (g / 4))) & 3;
        return (low | (high << 4)) - 32;
    }

    /// <summary>Quant v (0–255, 0–3) of a Q2_K block: bits 2·quarter of byte 16 + 32·half + v % 32, as Q3_K's low two bits.</summary>
    public static int QuantQ2_K(ReadOnlySpan<byte> block, int v) => (block[16 + 32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3;

    private static void DequantizeQ2_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 80), min = HalfAt(block, 82);
        for (int v = 0; v < 256; v++)
        {
            int scales = block[v / 16];
            y[v] = d * (scales & 0xF) * QuantQ2_K(block, v) - min * (scales >> 4);
        }
    }

    private static void DequantizeQ3_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 108);
        for (int v = 0; v < 256; v++)
        {
            y[v] = d * ScaleQ3_K(block, v / 16) * (QuantQ3_K(block, v) - 4);
        }
    }

    private static void DequantizeQ6_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = HalfAt(block, 208);
        for (int v = 0; v < 256; v++)
        {
            y[v] = d * (sbyte)block[192 + v / 16] * (QuantQ6_K(block, v) - 32);
        }
    }

    private static void DequantizeQ8_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = BinaryPrimitives.ReadSingleLittleEndian(block);
        for (int j = 0; j < 256; j++)
        {
            y[j] = d * (sbyte)block[4 + j];
        }
    }

    private static float BlockDotQ8_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0;
        for (int j = 0; j < 32; j++)
        {
            sum += (sbyte)w[2 + j] * (sbyte)a[2 + j];
        }

        return sum * (HalfAt(w, 0) * HalfAt(a, 0));
    }

    private static float BlockDotQ4_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0;
        for (int j = 0; j < 16; j++)
        {
            sum += ((w[2 + j] & 0xF) - 8) * (sbyte)a[2 + j] + ((w[2 + j] >> 4) - 8) * (sbyte)a[18 + j];
        }

        return sum * (HalfAt(w, 0) * HalfAt(a, 0));
    }

    private static float BlockDotQ5_0(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0;
        for (int j = 0; j < 32; j++)
        {
            sum += QuantQ5_0(w, j) * (sbyte)a[2 + j];
        }

        return sum * (HalfAt(w, 0) * HalfAt(a, 0));
    }

    private static float BlockDotQ45_K(GgmlType type, ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        ReadOnlySpan<byte> scales = w.Slice(4, 12);
        ReadOnlySpan<byte> qs = w.Slice(type == GgmlType.Q5_K ? 48 : 16, 128);
        int sum = 0, mins = 0;
        for (int j = 0; j < 8; j++)
        {
            (int sc, int m) = ScaleMinK4(j, scales);
            int sub = 0;
            for (int v = 32 * j; v < 32 * j + 32; v++)
            {
                int q = NibbleQ4_K(qs, v) + (type == GgmlType.Q5_K ? HighBitQ5_K(w.Slice(16, 32), v) : 0);
                sub += q * (sbyte)a[4 + v];
            }

            sum += sc * sub;
            mins += m * (BsumQ8_K(a, 2 * j) + BsumQ8_K(a, 2 * j + 1));
        }

        float da = BinaryPrimitives.ReadSingleLittleEndian(a);
        return HalfAt(w, 0) * da * sum - HalfAt(w, 2) * da * mins;
    }

    private static float BlockDotQ6_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0;
        for (int g = 0; g < 16; g++)
        {
            int sub = 0;
            for (int v = 16 * g; v < 16 * g + 16; v++)
            {
                sub += (QuantQ6_K(w, v) - 32) * (sbyte)a[4 + v];
            }

            sum += (sbyte)w[192 + g] * sub;
        }

        return HalfAt(w, 208) * BinaryPrimitives.ReadSingleLittleEndian(a) * sum;
    }

    private static float BlockDotQ2_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0, mins = 0;
        for (int g = 0; g < 16; g++)
        {
            int sub = 0;
            for (int v = 16 * g; v < 16 * g + 16; v++)
            {
                sub += QuantQ2_K(w, v) * (sbyte)a[4 + v];
            }

            sum += (w[g] & 0xF) * sub;
            mins += (w[g] >> 4) * BsumQ8_K(a, g);
        }

        float da = BinaryPrimitives.ReadSingleLittleEndian(a);
        return HalfAt(w, 80) * da * sum - HalfAt(w, 82) * da * mins;
    }

    private static float BlockDotQ3_K(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a)
    {
        int sum = 0;
        for (int g = 0; g < 16; g++)
        {
            int sub = 0;
            for (int v = 16 * g; v < 16 * g + 16; v++)
            {
                sub += (QuantQ3_K(w, v) - 4) * (sbyte)a[4 + v];
            }

            sum += ScaleQ3_K(w, g) * sub;
        }

        return HalfAt(w, 108) * BinaryPrimitives.ReadSingleLittleEndian(a) * sum;
    }

    private static int BsumQ8_K(ReadOnlySpan<byte> a, int group) => BinaryPrimitives.ReadInt16LittleEndian(a.Slice(260 + 2 * group));
}
