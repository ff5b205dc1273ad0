using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Prefill on AVX-512 in dot-product form: the panel keeps the weights' own row-major layout ([row][k]), so packing is
// a straight vectorized widen with no transpose; the micro-kernel multiplies 16 consecutive columns of a weight row by
// the same 16 columns of a token and keeps 16 partial sums per (row, token), folded into one only at the end of a
// K block. Each y[t, r] is still summed the same way whatever tile or thread computes it.
internal static unsafe partial class MatMul
{
    /// <summary>Each thread's packed panel (DotPanelRows × DotKBlock floats, 512 KiB); allocated once per thread.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_panel;

    [SkipLocalsInit]
    private static void PrefillRowsAvx512(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        float* packed = (t_panel ??= new AlignedBuffer(DotPanelRows * DotKBlock)).Pointer;
        float* tile = stackalloc float[DotTokens * DotRows];
        int columns = w.Columns;
        for (int r0 = rowStart; r0 < rowEnd; r0 += DotPanelRows)
        {
            int rows = Math.Min(DotPanelRows, rowEnd - r0);
            for (int k0 = 0; k0 < columns; k0 += DotKBlock)
            {
                int kc = Math.Min(DotKBlock, columns - k0);
                PackRows(w, r0, rows, k0, kc, packed);
                for (int t0 = 0; t0 < tokens; t0 += DotTokens)
                {
                    int count = Math.Min(DotTokens, tokens - t0);
                    float* xt = x + (long)t0 * columns + k0;
                    for (int j = 0; j < rows; j += DotRows)
                    {
                        DotTileAvx512(packed + j * DotKBlock, kc, xt, columns, count, tile);
                        int valid = Math.Min(DotRows, rows - j);
                        for (int i = 0; i < count; i++)
                        {
                            float* source = tile + i * DotRows;
                            float* destination = y + (long)(t0 + i) * w.Rows + r0 + j;
                            if (valid == DotRows)
                            {
                                Vector128<float> sums = Vector128.Load(source);
                                (k0 == 0 ? sums : sums + Vector128.Load(destination)).Store(destination);
                            }
                            else
                            {
                                for (int r = 0; r < valid; r++)
                                {
                                    destination[r] = k0 == 0 ? source[r] : destination[r] + source[r];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>packed[j · DotKBlock + k] = W[r0 + j, k0 + k] as float32; rows up to the next multiple of DotRows are zero.</summary>
    private static void PackRows(in WeightMatrix w, int r0, int rows, int k0, int kc, float* packed)
    {
        for (int j = 0; j < rows; j++)
        {
            byte* row = w.Row(r0 + j);
            var destination = new Span<float>(packed + j * DotKBlock, kc);
            switch (w.Type)
            {
                case TensorDType.BF16:
                    BFloat16.ToSingle(new ReadOnlySpan<ushort>((ushort*)row + k0, kc), destination);
                    break;
                case TensorDType.F16:
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)row + k0, kc), destination);
                    break;
                default:
                    new ReadOnlySpan<float>((float*)row + k0, kc).CopyTo(destination);
                    break;
            }
        }

        int padded = (rows + DotRows - 1) / DotRows * DotRows;
        new Span<float>(packed + rows * DotKBlock, (padded - rows) * DotKBlock).Clear();
    }

    /// <summary>
    /// tile[i · DotRows + r] = Σ_k p[r · DotKBlock + k] · x_i[k] for 4 rows × 6 tokens: 24 zmm accumulators; per 16
    /// columns, 4 weight loads, 6 x loads, 24 FMAs. Columns past the last multiple of 16 are added one at a time.
    /// </summary>
    private static void DotTileAvx512(float* p, int kc, float* x, long stride, int count, float* tile)
    {
        float* x0 = TokenRow(x, stride, 0, count), x1 = TokenRow(x, stride, 1, count), x2 = TokenRow(x, stride, 2, count);
        float* x3 = TokenRow(x, stride, 3, count), x4 = TokenRow(x, stride, 4, count), x5 = TokenRow(x, stride, 5, count);
        float* p0 = p, p1 = p + DotKBlock, p2 = p + 2 * DotKBlock, p3 = p + 3 * DotKBlock;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default, c50 = default, c51 = default, c52 = default, c53 = default;
        int vectorEnd = kc & ~15;
        for (int k = 0; k < vectorEnd; k += 16)
        {
            Vector512<float> w0 = Vector512.Load(p0 + k);
            Vector512<float> w1 = Vector512.Load(p1 + k);
            Vector512<float> w2 = Vector512.Load(p2 + k);
            Vector512<float> w3 = Vector512.Load(p3 + k);
            Vector512<float> b = Vector512.Load(x0 + k);
            c00 = Avx512F.FusedMultiplyAdd(w0, b, c00);
            c01 = Avx512F.FusedMultiplyAdd(w1, b, c01);
            c02 = Avx512F.FusedMultiplyAdd(w2, b, c02);
            c03 = Avx512F.FusedMultiplyAdd(w3, b, c03);
            b = Vector512.Load(x1 + k);
            c10 = Avx512F.FusedMultiplyAdd(w0, b, c10);
            c11 = Avx512F.FusedMultiplyAdd(w1, b, c11);
            c12 = Avx512F.FusedMultiplyAdd(w2, b, c12);
            c13 = Avx512F.FusedMultiplyAdd(w3, b, c13);
            b = Vector512.Load(x2 + k);
            c20 = Avx512F.FusedMultiplyAdd(w0, b, c20);
            c21 = Avx512F.FusedMultiplyAdd(w1, b, c21);
            c22 = Avx512F.FusedMultiplyAdd(w2, b, c22);
            c23 = Avx512F.FusedMultiplyAdd(w3, b, c23);
            b = Vector512.Load(x3 + k);
            c30 = Avx512F.FusedMultiplyAdd(w0, b, c30);
            c31 = Avx512F.FusedMultiplyAdd(w1, b, c31);
            c32 = Avx512F.FusedMultiplyAdd(w2, b, c32);
            c33 = Avx512F.FusedMultiplyAdd(w3, b, c33);
            b = Vector512.Load(x4 + k);
            c40 = Avx512F.FusedMultiplyAdd(w0, b, c40);
            c41 = Avx512F.FusedMultiplyAdd(w1, b, c41);
            c42 = Avx512F.FusedMultiplyAdd(w2, b, c42);
            c43 = Avx512F.FusedMultiplyAdd(w3, b, c43);
            b = Vector512.Load(x5 + k);
            c50 = Avx512F.FusedMultiplyAdd(w0, b, c50);
            c51 = Avx512F.FusedMultiplyAdd(w1, b, c51);
            c52 = Avx512F.FusedMultiplyAdd(w2, b, c52);
            c53 = Avx512F.FusedMultiplyAdd(w3, b, c53);
        }

        Sum4(c00, c01, c02, c03).Store(tile);
        Sum4(c10, c11, c12, c13).Store(tile + DotRows);
        Sum4(c20, c21, c22, c23).Store(tile + 2 * DotRows);
        Sum4(c30, c31, c32, c33).Store(tile + 3 * DotRows);
        Sum4(c40, c41, c42, c43).Store(tile + 4 * DotRows);
        Sum4(c50, c51, c52, c53).Store(tile + 5 * DotRows);

        for (int k = vectorEnd; k < kc; k++)
        {
            for (int i = 0; i < DotTokens; i++)
            {
                float xi = TokenRow(x, stride, i, count)[k];
                for (int r = 0; r < DotRows; r++)
                {
                    tile[i * DotRows + r] += p[r * DotKBlock + k] * xi;
                }
            }
        }
    }

    /// <summary>The four horizontal sums {Σa, Σb, Σc, Σd}: two rounds of unpack-and-add inside 128-bit lanes, then the lanes folded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and likewise for c, d.
        Vector512<float> ab = Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
        Vector512<float> cd = Avx512F.UnpackLow(c, d) + Avx512F.UnpackHigh(c, d);

        // Per 128-bit lane: [Σa, Σb, Σc, Σd] of that lane.
        Vector512<float> abcd = Avx512F.UnpackLow(ab.AsDouble(), cd.AsDouble()).AsSingle() + Avx512F.UnpackHigh(ab.AsDouble(), cd.AsDouble()).AsSingle();
        Vector256<float> half = abcd.GetLower() + abcd.GetUpper();
        return half.GetLower() + half.GetUpper();
    }
}
