using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Prefill on AVX-512 in dot-product form, reading the weights where they are: the micro-kernel widens BF16 rows in
// registers straight from the memory map (F32 rows need nothing), so nothing is packed; only F16, which .NET cannot
// widen in registers (no vcvtph2ps), is first widened into an aligned float32 panel. A panel is as many rows as fit in
// 512 KiB, half an L2: every 6-token x tile sweeps it, so after the first tile its rows come from L2. The micro-kernel
// keeps 4 rows × 6 tokens of 16 partial sums each over the whole row, so each y[t, r] is written once, and summed the
// same way whatever tile or thread computes it.
internal static unsafe partial class MatMul
{
    /// <summary>F16 rows widened to float32, one panel at a time; allocated on first use per thread.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_widenedPanel;

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PrefillRowsAvx512(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        int columns = w.Columns;
        bool widen = w.Type == TensorDType.F16;
        long stride = widen ? (long)columns * sizeof(float) : w.RowStride;
        int panelRows = (int)Math.Max(DotRows, DotPanelBytes / stride / DotRows * DotRows);
        float* tile = stackalloc float[DotTokens * DotRows];
        for (int r0 = rowStart; r0 < rowEnd; r0 += panelRows)
        {
            int rows = Math.Min(panelRows, rowEnd - r0);
            byte* panel = widen ? (byte*)WidenPanel(w, r0, rows) : w.Row(r0);
            bool bf16 = w.Type == TensorDType.BF16;
            for (int t0 = 0; t0 < tokens; t0 += DotTokens)
            {
                int count = Math.Min(DotTokens, tokens - t0);
                float* xt = x + (long)t0 * columns;
                for (int j = 0; j < rows; j += DotRows)
                {
                    // A short last group repeats its last row; those sums are not stored.
                    int valid = Math.Min(DotRows, rows - j);
                    byte* first = panel + j * stride;
                    long lastOffset = (valid - 1) * stride;
                    if (bf16)
                    {
                        DotTileAvx512<Bf16>(first, stride, lastOffset, columns, xt, count, tile);
                    }
                    else
                    {
                        DotTileAvx512<F32>(first, stride, lastOffset, columns, xt, count, tile);
                    }

                    for (int i = 0; i < count; i++)
                    {
                        float* destination = y + (long)(t0 + i) * w.Rows + r0 + j;
                        if (valid == DotRows)
                        {
                            Vector128.Load(tile + i * DotRows).Store(destination);
                        }
                        else
                        {
                            new ReadOnlySpan<float>(tile + i * DotRows, valid).CopyTo(new Span<float>(destination, valid));
                        }
                    }
                }
            }
        }
    }

    /// <summary>Rows [r0, r0 + rows) widened to float32, one after another, in this thread's aligned panel.</summary>
    private static float* WidenPanel(in WeightMatrix w, int r0, int rows)
    {
        int length = rows * w.Columns;
        if (t_widenedPanel is null || t_widenedPanel.Length < length)
        {
            t_widenedPanel = new AlignedBuffer(Math.Max(length, DotPanelBytes / sizeof(float)));
        }

        for (int j = 0; j < rows; j++)
        {
            w.ReadRow(r0 + j, t_widenedPanel.AsSpan(j * w.Columns, w.Columns));
        }

        return t_widenedPanel.Pointer;
    }

    /// <summary>
    /// tile[i · DotRows + r] = Σ_k W_r[k] · x_i[k] over a whole row, for 4 rows × 6 tokens: 24 zmm accumulators; per 16
    /// columns, 4 weight loads (widened in registers), 6 x loads, 24 FMAs. Columns past the last multiple of 16 are
    /// added one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTileAvx512<TLoad>(byte* first, long stride, long lastOffset, int columns, float* x, int count, float* tile)
        where TLoad : struct, IWeightLoad
    {
        float* x0 = TokenRow(x, columns, 0, count), x1 = TokenRow(x, columns, 1, count), x2 = TokenRow(x, columns, 2, count);
        float* x3 = TokenRow(x, columns, 3, count), x4 = TokenRow(x, columns, 4, count), x5 = TokenRow(x, columns, 5, count);
        byte* p0 = first, p1 = first + Math.Min(stride, lastOffset), p2 = first + Math.Min(2 * stride, lastOffset), p3 = first + lastOffset;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default, c50 = default, c51 = default, c52 = default, c53 = default;
        int vectorEnd = columns & ~15;
        for (int k = 0; k < vectorEnd; k += 16)
        {
            Vector512<float> w0 = TLoad.Load512(p0, k);
            Vector512<float> w1 = TLoad.Load512(p1, k);
            Vector512<float> w2 = TLoad.Load512(p2, k);
            Vector512<float> w3 = TLoad.Load512(p3, k);
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

        HorizontalSum.Of4(c00, c01, c02, c03).Store(tile);
        HorizontalSum.Of4(c10, c11, c12, c13).Store(tile + DotRows);
        HorizontalSum.Of4(c20, c21, c22, c23).Store(tile + 2 * DotRows);
        HorizontalSum.Of4(c30, c31, c32, c33).Store(tile + 3 * DotRows);
        HorizontalSum.Of4(c40, c41, c42, c43).Store(tile + 4 * DotRows);
        HorizontalSum.Of4(c50, c51, c52, c53).Store(tile + 5 * DotRows);

        if (vectorEnd < columns)
        {
            byte** rows = stackalloc byte*[DotRows] { p0, p1, p2, p3 };
            for (int i = 0; i < DotTokens; i++)
            {
                float* xi = TokenRow(x, columns, i, count);
                for (int r = 0; r < DotRows; r++)
                {
                    tile[i * DotRows + r] += Tail<TLoad>(rows[r], xi, vectorEnd, columns);
                }
            }
        }
    }
}
