using System.Buffers.Binary;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// ggml's reference weight quantizers (ggml-quants.c, the path llama-quantize takes without an importance matrix):
/// quantize_row_q8_0_ref, q4_0_ref, q5_0_ref, q2_K_ref, q3_K_ref, q4_K_ref, q5_K_ref and q6_K_ref, written to give the same bytes. Every float
/// operation keeps ggml's order and float32 precision, as the C is compiled without FMA contraction.
/// </summary>
internal static class WeightQuantizer
{
    // ggml-quants.c's GROUP_MAX_EPS: a group whose largest magnitude is below it quantizes to zeros.
    private const float GroupMaxEps = 1e-15f;

    /// <summary>Quantizes whole blocks of <paramref name="x"/> into <paramref name="blocks"/>.</summary>
    /// <exception cref="ArgumentException">x is not whole blocks, or blocks is too short.</exception>
    /// <exception cref="ArgumentOutOfRangeException">type is not a weight format.</exception>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> x, Span<byte> blocks)
    {
        if (!QuantizedFormat.IsWeightType(type))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a weight format");
        }

        int values = GgmlTypes.BlockSize(type), bytes = GgmlTypes.BytesPerBlock(type);
        if (x.Length % values != 0 || blocks.Length < (long)x.Length / values * bytes)
        {
            throw new ArgumentException($"{x.Length} values quantized to {type} need whole blocks of {values} and {x.Length / values * bytes} bytes; got {blocks.Length}.");
        }

        if (type == GgmlType.Q8_0)
        {
            QuantizedReference.QuantizeQ8_0(x, blocks);
            return;
        }

        for (int b = 0; b < x.Length / values; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * values, values);
            Span<byte> block = blocks.Slice(b * bytes, bytes);
            switch (type)
            {
                case GgmlType.Q4_0: QuantizeQ45_0(v, block, bits: 4); break;
                case GgmlType.Q5_0: QuantizeQ45_0(v, block, bits: 5); break;
                case GgmlType.Q4_K: QuantizeQ45_K(v, block, nmax: 15); break;
                case GgmlType.Q5_K: QuantizeQ45_K(v, block, nmax: 31); break;
                case GgmlType.Q3_K: QuantizeQ3_K(v, block); break;
                case GgmlType.Q2_K: QuantizeQ2_K(v, block); break;
                default: QuantizeQ6_K(v, block); break;
            }
        }
    }

    /// <summary>ggml's nearest_int: round half to even through the float mantissa (valid for |f| ≤ 4194303, as in ggml).</summary>
    internal static int NearestInt(float f) => (BitConverter.SingleToInt32Bits(f + 12582912f) & 0x007FFFFF) - 0x00400000;

    private static void WriteHalf(Span<byte> destination, float value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(destination, BitConverter.HalfToUInt16Bits((Half)value));

    private static float ReadHalf(ReadOnlySpan<byte> source) => Half16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source));

    /// <summary>The value of largest magnitude, the first of equal ones (ggml's amax/max loops), 0 for none.</summary>
    private static float SignedMax(ReadOnlySpan<float> x)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            if (MathF.Abs(v) > amax)
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }

        return max;
    }

    // Q4_0 (4 bits) and Q5_0 (5): d = max / −2^(bits − 1) from the value of largest magnitude (the first of equal
    // ones), each value rounded to an unsigned level; the low four bits as nibbles (low: values 0–15, high: 16–31),
    // Q5_0's fifth bits gathered into a little-endian word before them.
    private static void QuantizeQ45_0(ReadOnlySpan<float> x, Span<byte> block, int bits)
    {
        float max = SignedMax(x);
        int half = 1 << (bits - 1);
        float d = max / -half;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(block, d);
        Span<byte> nibbles = block.Slice(bits == 5 ? 6 : 2, 16);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int x0 = Math.Min(2 * half - 1, (int)(x[j] * id + (half + 0.5f)));
            int x1 = Math.Min(2 * half - 1, (int)(x[16 + j] * id + (half + 0.5f)));
            nibbles[j] = (byte)((x0 & 0xF) | ((x1 & 0xF) << 4));
            qh |= (uint)(x0 >> 4) << j;
            qh |= (uint)(x1 >> 4) << (j + 16);
        }

        if (bits == 5)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(block.Slice(2), qh);
        }
    }

    // Q4_K (nmax 15) and Q5_K (nmax 31): per 32 values a scale and a min by make_qkx2_quants, then both quantized to
    // 6 bits against the block's f16 d and dmin, and the values quantized again against the rounded scales.
    private static void QuantizeQ45_K(ReadOnlySpan<float> x, Span<byte> block, int nmax)
    {
        bool five = nmax == 31;
        Span<byte> levels = stackalloc byte[256];
        Span<byte> aux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        block.Clear();

        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            ReadOnlySpan<float> sub = x.Slice(32 * j, 32);
            float sumX2 = 0;
            foreach (float v in sub)
            {
                sumX2 += v * v;
            }

            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++)
            {
                weights[l] = avX + MathF.Abs(sub[l]);
            }

            scales[j] = MakeQkx2Quants(nmax, sub, weights, levels.Slice(32 * j, 32), out mins[j], aux,
                five ? -0.5f : -1.0f, 0.1f, five ? 15 : 20, useMad: false);
            if (scales[j] > maxScale)
            {
                maxScale = scales[j];
            }

            if (mins[j] > maxMin)
            {
                maxMin = mins[j];
            }
        }

        float invScale = maxScale > 0 ? 63.0f / maxScale : 0.0f;
        float invMin = maxMin > 0 ? 63.0f / maxMin : 0.0f;
        Span<byte> packed = block.Slice(4, 12);
        for (int j = 0; j < 8; j++)
        {
            // ggml stores nearest_int into a uint8_t before clamping, so a negative result wraps first.
            int ls = Math.Min(63, (int)(byte)NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }

        WriteHalf(block, maxScale / 63.0f);
        WriteHalf(block.Slice(2), maxMin / 63.0f);

        float blockD = ReadHalf(block), blockMin = ReadHalf(block.Slice(2));
        for (int j = 0; j < 8; j++)
        {
            (int sc, int m) = QuantizedReference.ScaleMinK4(j, packed);
            float d = blockD * sc;
            if (d == 0)
            {
                continue; // keeps make_qkx2_quants's levels, as ggml does
            }

            float dm = blockMin * m;
            for (int i = 0; i < 32; i++)
            {
                levels[32 * j + i] = (byte)Math.Clamp(NearestInt((x[32 * j + i] + dm) / d), 0, nmax);
            }
        }

        // Nibbles: each 32-byte chunk holds values n..n+31 low and n+32..n+63 high; Q5_K's fifth bits go to qh,
        // bit 2k for the low and 2k+1 for the high half of chunk k.
        Span<byte> qh = five ? block.Slice(16, 32) : default;
        Span<byte> qs = block.Slice(five ? 48 : 16, 128);
        for (int n = 0, chunk = 0; n < 256; n += 64, chunk++)
        {
            for (int j = 0; j < 32; j++)
            {
                int l1 = levels[n + j], l2 = levels[n + j + 32];
                if (l1 > 15)
                {
                    l1 -= 16;
                    qh[j] |= (byte)(1 << (2 * chunk));
                }

                if (l2 > 15)
                {
                    l2 -= 16;
                    qh[j] |= (byte)(2 << (2 * chunk));
                }

                qs[32 * chunk + j] = (byte)(l1 | (l2 << 4));
            }
        }
    }

    // make_qkx2_quants: levels 0..nmax for x ≈ scale·L − theMin, the scale and min refined by weighted least squares
    // over nstep+1 trial inverse scales, each judged by its weighted squared error (or absolute, useMad); returns the scale.
    private static float MakeQkx2Quants(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> levels,
        out float theMin, Span<byte> aux, float rmin, float rdelta, int nstep, bool useMad)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min)
            {
                min = x[i];
            }

            if (x[i] > max)
            {
                max = x[i];
            }

            sumW += weights[i];
            sumX += weights[i] * x[i];
        }

        if (min > 0)
        {
            min = 0;
        }

        if (max == min)
        {
            levels.Clear();
            theMin = -min;
            return 0.0f;
        }

        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            levels[i] = (byte)l;
            float diff = scale * l + min - x[i];
            bestError += weights[i] * (useMad ? MathF.Abs(diff) : diff * diff);
        }

        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                aux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }

            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }

                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * aux[i] + thisMin - x[i];
                    error += weights[i] * (useMad ? MathF.Abs(diff) : diff * diff);
                }

                if (error < bestError)
                {
                    aux.Slice(0, n).CopyTo(levels);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }

        theMin = -min;
        return scale;
    }

    // Q6_K: per 16 values a signed scale by make_qx_quants (weights x²), the 16 scales quantized to int8 against the
    // block's f16 d, then the values quantized again to −32..31 against the rounded scales.
    private static void QuantizeQ6_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<sbyte> levels = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int g = 0; g < 16; g++)
        {
            scales[g] = MakeQxQuants(32, x.Slice(16 * g, 16), levels.Slice(16 * g, 16));
        }

        float maxScale = SignedMax(scales);
        block.Clear();
        if (MathF.Abs(maxScale) < GroupMaxEps)
        {
            return; // all zeros, d = +0
        }

        float iscale = -128.0f / maxScale;
        WriteHalf(block.Slice(208), 1 / iscale);
        for (int g = 0; g < 16; g++)
        {
            block[192 + g] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[g]));
        }

        float blockD = ReadHalf(block.Slice(208));
        for (int g = 0; g < 16; g++)
        {
            float d = blockD * (sbyte)block[192 + g];
            if (d == 0)
            {
                continue; // keeps make_qx_quants's levels, as ggml does
            }

            for (int i = 0; i < 16; i++)
            {
                levels[16 * g + i] = (sbyte)(Math.Clamp(NearestInt(x[16 * g + i] / d), -32, 31) + 32);
            }
        }

        // Low nibbles: bytes 0–63 of each 128-value half hold values l (low) and l+64 (high), bytes 32–63 l+32 and
        // l+96; the high two bits of l, l+32, l+64, l+96 share one byte of qh.
        for (int half = 0; half < 2; half++)
        {
            Span<byte> ql = block.Slice(64 * half, 64);
            Span<byte> qh = block.Slice(128 + 32 * half, 32);
            int j = 128 * half;
            for (int l = 0; l < 32; l++)
            {
                int q1 = levels[j + l], q2 = levels[j + l + 32], q3 = levels[j + l + 64], q4 = levels[j + l + 96];
                ql[l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }

    // Q2_K: per 16 values a scale and a min by make_qkx2_quants (weights |x|, absolute errors), both quantized to 4
    // bits against the block's f16 d and dmin, then the values quantized again to 0..3 against the rounded scales.
    private static void QuantizeQ2_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<byte> levels = stackalloc byte[256];
        Span<byte> aux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        block.Clear();

        float maxScale = 0, maxMin = 0;
        for (int g = 0; g < 16; g++)
        {
            ReadOnlySpan<float> sub = x.Slice(16 * g, 16);
            for (int l = 0; l < 16; l++)
            {
                weights[l] = MathF.Abs(sub[l]);
            }

            scales[g] = MakeQkx2Quants(3, sub, weights, levels.Slice(16 * g, 16), out mins[g], aux, -0.5f, 0.1f, 15, useMad: true);
            if (scales[g] > maxScale)
            {
                maxScale = scales[g];
            }

            if (mins[g] > maxMin)
            {
                maxMin = mins[g];
            }
        }

        // ggml stores the rounded scales and mins into bytes as they come (at most 15 each, as none exceeds the largest).
        if (maxScale > 0)
        {
            float iscale = 15.0f / maxScale;
            for (int g = 0; g < 16; g++)
            {
                block[g] = (byte)NearestInt(iscale * scales[g]);
            }

            WriteHalf(block.Slice(80), maxScale / 15.0f);
        }

        if (maxMin > 0)
        {
            float iscale = 15.0f / maxMin;
            for (int g = 0; g < 16; g++)
            {
                block[g] |= (byte)(NearestInt(iscale * mins[g]) << 4);
            }

            WriteHalf(block.Slice(82), maxMin / 15.0f);
        }

        float blockD = ReadHalf(block.Slice(80)), blockMin = ReadHalf(block.Slice(82));
        for (int g = 0; g < 16; g++)
        {
            float d = blockD * (block[g] & 0xF);
            if (d == 0)
            {
                continue; // keeps make_qkx2_quants's levels, as ggml does
            }

            float dm = blockMin * (block[g] >> 4);
            for (int i = 0; i < 16; i++)
            {
                levels[16 * g + i] = (byte)Math.Clamp(NearestInt((x[16 * g + i] + dm) / d), 0, 3);
            }
        }

        Span<byte> quants = block.Slice(16, 64);
        for (int v = 0; v < 256; v++)
        {
            quants[32 * (v / 128) + v % 32] |= (byte)(levels[v] << (2 * (v % 128 / 32)));
        }
    }

    // Q3_K: per 16 values a signed scale by make_q3_quants, the 16 scales quantized to 6 bits (−32..31) against the
    // block's f16 d, then the values quantized again to −4..3 against the rounded scales; the third bits to hmask.
    private static void QuantizeQ3_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<sbyte> levels = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int g = 0; g < 16; g++)
        {
            scales[g] = MakeQ3Quants(x.Slice(16 * g, 16), levels.Slice(16 * g, 16));
        }

        float maxScale = SignedMax(scales);
        block.Clear();
        Span<byte> packed = block.Slice(96, 12);
        if (maxScale != 0)
        {
            float iscale = -32.0f / maxScale;
            for (int g = 0; g < 16; g++)
            {
                int l = Math.Clamp(NearestInt(iscale * scales[g]), -32, 31) + 32;
                packed[g % 8] |= (byte)((l & 0xF) << (4 * (g / 8)));
                packed[8 + g % 4] |= (byte)((l >> 4) << (2 * (g / 4)));
            }

            WriteHalf(block.Slice(108), 1 / iscale);
        }

        float blockD = ReadHalf(block.Slice(108));
        for (int g = 0; g < 16; g++)
        {
            float d = blockD * QuantizedReference.ScaleQ3_K(block, g);
            if (d == 0)
            {
                continue; // keeps make_q3_quants's levels, as ggml does
            }

            for (int i = 0; i < 16; i++)
            {
                levels[16 * g + i] = (sbyte)(Math.Clamp(NearestInt(x[16 * g + i] / d), -4, 3) + 4);
            }
        }

        // Value v's third bit is bit v / 32 of hmask byte v % 32; its low two bits go to byte 32·(v / 128) + v % 32 of
        // the pairs, at bits 2·(v % 128 / 32).
        Span<byte> hmask = block.Slice(0, 32), pairs = block.Slice(32, 64);
        for (int v = 0; v < 256; v++)
        {
            int level = levels[v];
            if (level > 3)
            {
                hmask[v % 32] |= (byte)(1 << (v / 32));
                level -= 4;
            }

            pairs[32 * (v / 128) + v % 32] |= (byte)(level << (2 * (v % 128 / 32)));
        }
    }

    // make_q3_quants with nmax 4 and do_rmse (weights x²): levels −4..3 from −4/max, then up to five passes that move
    // one level at a time where the weighted least-squares fit improves; returns the scale, the levels stored + 4.
    private static float MakeQ3Quants(ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        const int nmax = 4;
        float max = SignedMax(x);
        if (MathF.Abs(max) < GroupMaxEps)
        {
            levels.Clear();
            return 0.0f;
        }

        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }

        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < x.Length; i++)
            {
                float w = x[i] * x[i];
                float slx = sumLX - w * x[i] * levels[i];
                if (slx > 0)
                {
                    float sl2 = sumL2 - w * levels[i] * levels[i];
                    int l = Math.Clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
                    if (l != levels[i])
                    {
                        slx += w * x[i] * l;
                        sl2 += w * l * l;
                        if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2)
                        {
                            levels[i] = (sbyte)l;
                            sumLX = slx;
                            sumL2 = sl2;
                            changed++;
                        }
                    }
                }
            }

            if (changed == 0)
            {
                break;
            }
        }

        for (int i = 0; i < x.Length; i++)
        {
            levels[i] += nmax;
        }

        return sumL2 > 0 ? sumLX / sumL2 : 0.0f;
    }

    // make_qx_quants with rmse_type 1 and no importance weights (w = x²): levels nmax + (−nmax..nmax−1) for
    // x ≈ scale·(L − nmax), the scale refined over 18 trial inverse scales around −nmax/max; returns the scale.
    private static float MakeQxQuants(int nmax, ReadOnlySpan<float> x, Span<sbyte> levels)
    {
        float max = SignedMax(x);
        if (MathF.Abs(max) < GroupMaxEps)
        {
            levels.Clear();
            return 0.0f;
        }

        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }

        float scale = sumL2 != 0 ? sumLX / sumL2 : 0.0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
            {
                continue;
            }

            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }

            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < x.Length; i++)
                {
                    levels[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                }

                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }

        return scale;
    }
}
