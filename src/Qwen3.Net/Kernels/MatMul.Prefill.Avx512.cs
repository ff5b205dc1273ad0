using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Prefill on AVX-512, in the same broadcast form as the other paths but with the 32 registers AVX-512 has: a panel of
// 48 rows × up to 2048 columns is widened to float32 and transposed once ([k][row], 384 KiB, held in L2), and every
// 8-token tile then streams it: per column, 3 vectors of rows and 8 broadcast x values feed 24 FMAs into 24 zmm
// accumulators that live for the whole K block and are written straight into y. Against the dot-product kernel this
// replaced (4 rows × 6 tokens read in place from the memory map, widened in registers, horizontal sums at the end),
// probe on the 1.7B shapes, one thread, alternated: 2048 → 6144 at 512 tokens 204–207 against 160–186 GFLOP/s, at
// 128 tokens 185–190 (one sample 169) against 178–182; 6144 → 2048 at 512 tokens 160–182 against 127–150. Packing
// costs about a tenth of the FMA time at 128 tokens and is paid once per panel, so it matters less the longer the
// prompt.
internal static unsafe partial class MatMul
{
    private const int WidePanelRows = 48;

    private const int WideKBlock = 2048;

    private const int WideTileTokens = 8;

    /// <summary>F16 rows widened to float32, 16 rows × one K block, before they are transposed; allocated on first use per thread.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_widenedRows;

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PrefillRowsAvx512(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
    {
        if (t_packedPanel is null || t_packedPanel.Length < WideKBlock * WidePanelRows)
        {
            t_packedPanel = new AlignedBuffer(WideKBlock * WidePanelRows);
        }

        float* packed = t_packedPanel.Pointer;
        float* tile = stackalloc float[WideTileTokens * WidePanelRows];
        int columns = w.Columns;
        for (int r0 = rowStart; r0 < rowEnd; r0 += WidePanelRows)
        {
            int rows = Math.Min(WidePanelRows, rowEnd - r0);
            for (int k0 = 0; k0 < columns; k0 += WideKBlock)
            {
                int kc = Math.Min(WideKBlock, columns - k0);
                PackAvx512(w, r0, rows, k0, kc, packed);
                for (int t0 = 0; t0 < tokens; t0 += WideTileTokens)
                {
                    int count = Math.Min(WideTileTokens, tokens - t0);
                    float* xt = x + (long)t0 * columns + k0;
                    float* yt = y + (long)t0 * w.Rows + r0;
                    if (rows == WidePanelRows)
                    {
                        TileAvx512(packed, kc, xt, columns, count, yt, w.Rows, accumulate: k0 > 0);
                        continue;
                    }

                    // A short panel repeats its last row (see PackAvx512); only the real rows are kept.
                    TileAvx512(packed, kc, xt, columns, count, tile, WidePanelRows, accumulate: false);
                    StoreTile(tile, WidePanelRows, rows, count, yt, w.Rows, accumulate: k0 > 0);
                }
            }
        }
    }

    /// <summary>
    /// packed[k · 48 + j] = W[r0 + min(j, rows − 1), k0 + k] as float32, for k in [0, kc): a short panel repeats its last
    /// row, so every lane holds a real weight and the extra sums are simply not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackAvx512(in WeightMatrix w, int r0, int rows, int k0, int kc, float* packed)
    {
        for (int g = 0; g < WidePanelRows; g += 16)
        {
            int first = Math.Min(g, rows - 1);
            int count = Math.Clamp(rows - g, 1, 16);
            switch (w.Type)
            {
                case TensorDType.BF16:
                    PackGroupAvx512<Bf16>(w.Row(r0 + first), w.RowStride, count, k0, kc, packed + g);
                    break;
                case TensorDType.F32:
                    PackGroupAvx512<F32>(w.Row(r0 + first), w.RowStride, count, k0, kc, packed + g);
                    break;
                default:
                    // .NET cannot widen F16 in registers (no vcvtph2ps), so the group's rows are widened first.
                    t_widenedRows ??= new AlignedBuffer(16 * WideKBlock);
                    float* widened = t_widenedRows.Pointer;
                    for (int j = 0; j < count; j++)
                    {
                        TensorPrimitives.ConvertToSingle(
                            new ReadOnlySpan<Half>((Half*)w.Row(r0 + first + j) + k0, kc), new Span<float>(widened + j * kc, kc));
                    }

                    PackGroupAvx512<F32>((byte*)widened, (long)kc * sizeof(float), count, 0, kc, packed + g);
                    break;
            }
        }
    }

    /// <summary>
    /// Sixteen lanes of the panel from <paramref name="count"/> rows (the last one repeated up to sixteen), 16 × 16 blocks
    /// widened and transposed in registers so every store is a whole line; the columns past the last multiple of 16 one
    /// at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackGroupAvx512<TLoad>(byte* first, long stride, int count, int k0, int kc, float* lanes)
        where TLoad : struct, IWeightLoad
    {
        byte** row = stackalloc byte*[16];
        for (int j = 0; j < 16; j++)
        {
            row[j] = first + Math.Min(j, count - 1) * stride;
        }

        int vectorEnd = kc & ~15;
        for (int k = 0; k < vectorEnd; k += 16)
        {
            int c = k0 + k;
            Transpose16(
                TLoad.Load512(row[0], c), TLoad.Load512(row[1], c), TLoad.Load512(row[2], c), TLoad.Load512(row[3], c),
                TLoad.Load512(row[4], c), TLoad.Load512(row[5], c), TLoad.Load512(row[6], c), TLoad.Load512(row[7], c),
                TLoad.Load512(row[8], c), TLoad.Load512(row[9], c), TLoad.Load512(row[10], c), TLoad.Load512(row[11], c),
                TLoad.Load512(row[12], c), TLoad.Load512(row[13], c), TLoad.Load512(row[14], c), TLoad.Load512(row[15], c),
                lanes + k * WidePanelRows);
        }

        for (int k = vectorEnd; k < kc; k++)
        {
            for (int j = 0; j < 16; j++)
            {
                lanes[k * WidePanelRows + j] = TLoad.Load(row[j], k0 + k);
            }
        }
    }

    /// <summary>
    /// Stores column i of the 16 × 16 block whose rows are r0…r15 at o + i · 48. Pairs of rows are interleaved, then
    /// quadruples, so that each 128-bit lane L of q_m holds column 4L + m of four rows; two rounds of 128-bit lane
    /// shuffles then gather a column's four lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16(
        Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3,
        Vector512<float> r4, Vector512<float> r5, Vector512<float> r6, Vector512<float> r7,
        Vector512<float> r8, Vector512<float> r9, Vector512<float> r10, Vector512<float> r11,
        Vector512<float> r12, Vector512<float> r13, Vector512<float> r14, Vector512<float> r15, float* o)
    {
        Quadruple(r0, r1, r2, r3, out Vector512<float> a0, out Vector512<float> a1, out Vector512<float> a2, out Vector512<float> a3);
        Quadruple(r4, r5, r6, r7, out Vector512<float> b0, out Vector512<float> b1, out Vector512<float> b2, out Vector512<float> b3);
        Quadruple(r8, r9, r10, r11, out Vector512<float> c0, out Vector512<float> c1, out Vector512<float> c2, out Vector512<float> c3);
        Quadruple(r12, r13, r14, r15, out Vector512<float> d0, out Vector512<float> d1, out Vector512<float> d2, out Vector512<float> d3);
        Columns4(a0, b0, c0, d0, o);
        Columns4(a1, b1, c1, d1, o + WidePanelRows);
        Columns4(a2, b2, c2, d2, o + 2 * WidePanelRows);
        Columns4(a3, b3, c3, d3, o + 3 * WidePanelRows);
    }

    /// <summary>Lane L of q_m = {a[4L + m], b[4L + m], c[4L + m], d[4L + m]}.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quadruple(
        Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d,
        out Vector512<float> q0, out Vector512<float> q1, out Vector512<float> q2, out Vector512<float> q3)
    {
        Vector512<double> ab0 = Avx512F.UnpackLow(a, b).AsDouble(), ab1 = Avx512F.UnpackHigh(a, b).AsDouble();
        Vector512<double> cd0 = Avx512F.UnpackLow(c, d).AsDouble(), cd1 = Avx512F.UnpackHigh(c, d).AsDouble();
        q0 = Avx512F.UnpackLow(ab0, cd0).AsSingle();
        q1 = Avx512F.UnpackHigh(ab0, cd0).AsSingle();
        q2 = Avx512F.UnpackLow(ab1, cd1).AsSingle();
        q3 = Avx512F.UnpackHigh(ab1, cd1).AsSingle();
    }

    /// <summary>
    /// From four q_m of rows 0–3, 4–7, 8–11 and 12–15, columns m, 4 + m, 8 + m and 12 + m, at o, o + 4 · 48, o + 8 · 48
    /// and o + 12 · 48.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, float* o)
    {
        Vector512<float> ab01 = Avx512F.Shuffle4x128(a, b, 0b01_00_01_00), cd01 = Avx512F.Shuffle4x128(c, d, 0b01_00_01_00);
        Vector512<float> ab23 = Avx512F.Shuffle4x128(a, b, 0b11_10_11_10), cd23 = Avx512F.Shuffle4x128(c, d, 0b11_10_11_10);
        Avx512F.Shuffle4x128(ab01, cd01, 0b10_00_10_00).Store(o);
        Avx512F.Shuffle4x128(ab01, cd01, 0b11_01_11_01).Store(o + 4 * WidePanelRows);
        Avx512F.Shuffle4x128(ab23, cd23, 0b10_00_10_00).Store(o + 8 * WidePanelRows);
        Avx512F.Shuffle4x128(ab23, cd23, 0b11_01_11_01).Store(o + 12 * WidePanelRows);
    }

    /// <summary>
    /// y[i · yStride + j] (+)= Σ_k packed[k · 48 + j] · x_i[k] over the K block, for 8 tokens × 48 rows: 24 zmm
    /// accumulators, and per column 3 weight loads and 8 broadcasts. Token i of a short tile repeats the last token;
    /// only the first <paramref name="count"/> are stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileAvx512(float* packed, int kc, float* x, long stride, int count, float* y, long yStride, bool accumulate)
    {
        float* x0 = TokenRow(x, stride, 0, count), x1 = TokenRow(x, stride, 1, count), x2 = TokenRow(x, stride, 2, count), x3 = TokenRow(x, stride, 3, count);
        float* x4 = TokenRow(x, stride, 4, count), x5 = TokenRow(x, stride, 5, count), x6 = TokenRow(x, stride, 6, count), x7 = TokenRow(x, stride, 7, count);
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector512<float> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        float* p = packed;
        for (int k = 0; k < kc; k++, p += WidePanelRows)
        {
            Vector512<float> w0 = Vector512.Load(p), w1 = Vector512.Load(p + 16), w2 = Vector512.Load(p + 32);
            Vector512<float> b = Vector512.Create(x0[k]);
            c00 = Avx512F.FusedMultiplyAdd(w0, b, c00);
            c01 = Avx512F.FusedMultiplyAdd(w1, b, c01);
            c02 = Avx512F.FusedMultiplyAdd(w2, b, c02);
            b = Vector512.Create(x1[k]);
            c10 = Avx512F.FusedMultiplyAdd(w0, b, c10);
            c11 = Avx512F.FusedMultiplyAdd(w1, b, c11);
            c12 = Avx512F.FusedMultiplyAdd(w2, b, c12);
            b = Vector512.Create(x2[k]);
            c20 = Avx512F.FusedMultiplyAdd(w0, b, c20);
            c21 = Avx512F.FusedMultiplyAdd(w1, b, c21);
            c22 = Avx512F.FusedMultiplyAdd(w2, b, c22);
            b = Vector512.Create(x3[k]);
            c30 = Avx512F.FusedMultiplyAdd(w0, b, c30);
            c31 = Avx512F.FusedMultiplyAdd(w1, b, c31);
            c32 = Avx512F.FusedMultiplyAdd(w2, b, c32);
            b = Vector512.Create(x4[k]);
            c40 = Avx512F.FusedMultiplyAdd(w0, b, c40);
            c41 = Avx512F.FusedMultiplyAdd(w1, b, c41);
            c42 = Avx512F.FusedMultiplyAdd(w2, b, c42);
            b = Vector512.Create(x5[k]);
            c50 = Avx512F.FusedMultiplyAdd(w0, b, c50);
            c51 = Avx512F.FusedMultiplyAdd(w1, b, c51);
            c52 = Avx512F.FusedMultiplyAdd(w2, b, c52);
            b = Vector512.Create(x6[k]);
            c60 = Avx512F.FusedMultiplyAdd(w0, b, c60);
            c61 = Avx512F.FusedMultiplyAdd(w1, b, c61);
            c62 = Avx512F.FusedMultiplyAdd(w2, b, c62);
            b = Vector512.Create(x7[k]);
            c70 = Avx512F.FusedMultiplyAdd(w0, b, c70);
            c71 = Avx512F.FusedMultiplyAdd(w1, b, c71);
            c72 = Avx512F.FusedMultiplyAdd(w2, b, c72);
        }

        StoreRow(y, accumulate, c00, c01, c02);
        if (count > 1) StoreRow(y + yStride, accumulate, c10, c11, c12);
        if (count > 2) StoreRow(y + 2 * yStride, accumulate, c20, c21, c22);
        if (count > 3) StoreRow(y + 3 * yStride, accumulate, c30, c31, c32);
        if (count > 4) StoreRow(y + 4 * yStride, accumulate, c40, c41, c42);
        if (count > 5) StoreRow(y + 5 * yStride, accumulate, c50, c51, c52);
        if (count > 6) StoreRow(y + 6 * yStride, accumulate, c60, c61, c62);
        if (count > 7) StoreRow(y + 7 * yStride, accumulate, c70, c71, c72);
    }

    /// <summary>One token's 48 sums into y; after the first K block they are added to the earlier blocks' sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* y, bool accumulate, Vector512<float> a, Vector512<float> b, Vector512<float> c)
    {
        if (accumulate)
        {
            a += Vector512.Load(y);
            b += Vector512.Load(y + 16);
            c += Vector512.Load(y + 32);
        }

        a.Store(y);
        b.Store(y + 16);
        c.Store(y + 32);
    }
}
