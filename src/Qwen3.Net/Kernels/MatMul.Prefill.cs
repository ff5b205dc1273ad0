using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-matrix products for a block of tokens: compute-bound once each weight is reused across tokens.
// A panel of PanelRows weight rows × KBlock columns is widened to float32 once, transposed so that one k holds the
// panel's rows side by side ([k][row]); a register-blocked micro-kernel then broadcasts x[t, k] for a few tokens and
// multiplies it into whole vectors of rows, keeping tokens × rows accumulators in registers for the whole K block.
// Each y[t, r] is summed in k order within a block and block by block, whatever tile it falls in.
internal static unsafe partial class MatMul
{
    /// <summary>
    /// From this many tokens on, widening a tile once and reusing it beats streaming the weights; up to four tokens (a
    /// small batch of decoding sequences) share each weight load in the matrix-vector kernel instead
    /// (docs/benchmarks.md, BatchedDecodeBenchmarks).
    /// </summary>
    internal const int PrefillMinTokens = 5;

    private const int PanelRows = 32;

    // 256 columns × 32 rows × 4 bytes = 32 KiB of packed weights: L1-sized, reused for every token of the block.
    private const int KBlock = 256;

    private const int TileTokens = 6;

    /// <summary>The packed panel, cache-line aligned; allocated on first use per thread, at the size its path needs.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_packedPanel;

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PrefillRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        if (path == KernelPath.Avx512)
        {
            PrefillRowsAvx512(w, x, y, tokens, rowStart, rowEnd);
            return;
        }

        t_packedPanel ??= new AlignedBuffer(KBlock * PanelRows);
        float* packed = t_packedPanel.Pointer;
        float* tile = stackalloc float[TileTokens * PanelRows];
        float* widened = stackalloc float[KBlock];
        int columns = w.Columns;

        for (int r0 = rowStart; r0 < rowEnd; r0 += PanelRows)
        {
            int rows = Math.Min(PanelRows, rowEnd - r0);
            for (int k0 = 0; k0 < columns; k0 += KBlock)
            {
                int kc = Math.Min(KBlock, columns - k0);
                Pack(w, r0, rows, k0, kc, packed, widened, path);
                for (int t0 = 0; t0 < tokens; t0 += TileTokens)
                {
                    int count = Math.Min(TileTokens, tokens - t0);
                    float* xt = x + (long)t0 * columns + k0;
                    if (path == KernelPath.Avx2)
                    {
                        Tile<Width256, Vector256<float>>(packed, kc, xt, columns, count, tile);
                    }
                    else
                    {
                        Tile<Width128, Vector128<float>>(packed, kc, xt, columns, count, tile);
                    }

                    StoreTile(tile, PanelRows, rows, count, y + (long)t0 * w.Rows + r0, w.Rows, accumulate: k0 > 0);
                }
            }
        }
    }

    /// <summary>packed[k · PanelRows + j] = W[r0 + j, k0 + k] as float32; rows past the matrix are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pack(in WeightMatrix w, int r0, int rows, int k0, int kc, float* packed, float* widened, KernelPath path)
    {
        if (path == KernelPath.Avx2 && rows == PanelRows && kc % 8 == 0)
        {
            if (w.Type == TensorDType.BF16)
            {
                PackAvx2<Bf16>(w, r0, k0, kc, packed);
                return;
            }

            if (w.Type == TensorDType.F32)
            {
                PackAvx2<F32>(w, r0, k0, kc, packed);
                return;
            }
        }

        for (int j = 0; j < rows; j++)
        {
            byte* row = w.Row(r0 + j);
            switch (w.Type)
            {
                case TensorDType.BF16:
                    ushort* bf = (ushort*)row + k0;
                    for (int k = 0; k < kc; k++)
                    {
                        packed[k * PanelRows + j] = BFloat16.ToSingle(bf[k]);
                    }

                    break;
                case TensorDType.F16:
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)row + k0, kc), new Span<float>(widened, kc));
                    for (int k = 0; k < kc; k++)
                    {
                        packed[k * PanelRows + j] = widened[k];
                    }

                    break;
                default:
                    float* f = (float*)row + k0;
                    for (int k = 0; k < kc; k++)
                    {
                        packed[k * PanelRows + j] = f[k];
                    }

                    break;
            }
        }

        for (int j = rows; j < PanelRows; j++)
        {
            for (int k = 0; k < kc; k++)
            {
                packed[k * PanelRows + j] = 0;
            }
        }
    }

    /// <summary>
    /// <see cref="Pack"/> for a whole panel of BF16 or F32 rows and a K block that is a multiple of 8, eight rows × eight
    /// columns at a time: the block is widened in registers and transposed with shuffles, so every store is a whole
    /// vector. Packing one element at a time, each store to a different cache line, took 21% of a 512-token AVX2 prefill.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackAvx2<TLoad>(in WeightMatrix w, int r0, int k0, int kc, float* packed)
        where TLoad : struct, IWeightLoad
    {
        for (int j = 0; j < PanelRows; j += 8)
        {
            byte* p0 = w.Row(r0 + j), p1 = w.Row(r0 + j + 1), p2 = w.Row(r0 + j + 2), p3 = w.Row(r0 + j + 3);
            byte* p4 = w.Row(r0 + j + 4), p5 = w.Row(r0 + j + 5), p6 = w.Row(r0 + j + 6), p7 = w.Row(r0 + j + 7);
            for (int k = 0; k < kc; k += 8)
            {
                int c = k0 + k;
                Vector256<float> a0 = TLoad.Load256(p0, c), a1 = TLoad.Load256(p1, c), a2 = TLoad.Load256(p2, c), a3 = TLoad.Load256(p3, c);
                Vector256<float> a4 = TLoad.Load256(p4, c), a5 = TLoad.Load256(p5, c), a6 = TLoad.Load256(p6, c), a7 = TLoad.Load256(p7, c);

                // Pairs of rows interleaved, then quadruples, then the 128-bit halves swapped across: column i of the
                // 8 × 8 block ends up in one vector.
                Vector256<float> t0 = Avx.UnpackLow(a0, a1), t1 = Avx.UnpackHigh(a0, a1), t2 = Avx.UnpackLow(a2, a3), t3 = Avx.UnpackHigh(a2, a3);
                Vector256<float> t4 = Avx.UnpackLow(a4, a5), t5 = Avx.UnpackHigh(a4, a5), t6 = Avx.UnpackLow(a6, a7), t7 = Avx.UnpackHigh(a6, a7);
                Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44), s1 = Avx.Shuffle(t0, t2, 0xEE), s2 = Avx.Shuffle(t1, t3, 0x44), s3 = Avx.Shuffle(t1, t3, 0xEE);
                Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44), s5 = Avx.Shuffle(t4, t6, 0xEE), s6 = Avx.Shuffle(t5, t7, 0x44), s7 = Avx.Shuffle(t5, t7, 0xEE);
                float* o = packed + k * PanelRows + j;
                Avx.Permute2x128(s0, s4, 0x20).Store(o);
                Avx.Permute2x128(s1, s5, 0x20).Store(o + PanelRows);
                Avx.Permute2x128(s2, s6, 0x20).Store(o + 2 * PanelRows);
                Avx.Permute2x128(s3, s7, 0x20).Store(o + 3 * PanelRows);
                Avx.Permute2x128(s0, s4, 0x31).Store(o + 4 * PanelRows);
                Avx.Permute2x128(s1, s5, 0x31).Store(o + 5 * PanelRows);
                Avx.Permute2x128(s2, s6, 0x31).Store(o + 6 * PanelRows);
                Avx.Permute2x128(s3, s7, 0x31).Store(o + 7 * PanelRows);
            }
        }
    }

    /// <summary>
    /// The first <paramref name="rows"/> sums of each of <paramref name="count"/> tile rows into y, or, with
    /// <paramref name="accumulate"/>, added to the sums of the earlier K blocks there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile(float* tile, int tileStride, int rows, int count, float* y, long yStride, bool accumulate)
    {
        for (int i = 0; i < count; i++)
        {
            var source = new ReadOnlySpan<float>(tile + i * tileStride, rows);
            var destination = new Span<float>(y + i * yStride, rows);
            if (accumulate)
            {
                TensorPrimitives.Add(destination, source, destination);
            }
            else
            {
                source.CopyTo(destination);
            }
        }
    }

    /// <summary>Token i of a short tile repeats the last real token: the extra results land in the tile and are dropped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* TokenRow(float* x, long stride, int i, int count) => x + Math.Min(i, count - 1) * stride;

    /// <summary>
    /// tile[i · PanelRows + j] = Σ_k packed[k, j] · x_i[k] for 6 tokens and the whole panel, two vectors of rows at a
    /// time: 12 accumulators, 2 weight vectors and a broadcast x fit the 16 vector registers x64 has without AVX-512.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TWidth, TVector>(float* packed, int kc, float* x, long stride, int count, float* tile)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        int n = TWidth.Count;
        float* x0 = TokenRow(x, stride, 0, count), x1 = TokenRow(x, stride, 1, count), x2 = TokenRow(x, stride, 2, count);
        float* x3 = TokenRow(x, stride, 3, count), x4 = TokenRow(x, stride, 4, count), x5 = TokenRow(x, stride, 5, count);
        for (int j = 0; j < PanelRows; j += 2 * n)
        {
            float* p = packed + j;
            TVector c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
            TVector c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            for (int k = 0; k < kc; k++, p += PanelRows)
            {
                TVector w0 = TWidth.Load(p);
                TVector w1 = TWidth.Load(p + n);
                TVector b = TWidth.Broadcast(x0[k]);
                c00 = TWidth.MultiplyAdd(w0, b, c00);
                c01 = TWidth.MultiplyAdd(w1, b, c01);
                b = TWidth.Broadcast(x1[k]);
                c10 = TWidth.MultiplyAdd(w0, b, c10);
                c11 = TWidth.MultiplyAdd(w1, b, c11);
                b = TWidth.Broadcast(x2[k]);
                c20 = TWidth.MultiplyAdd(w0, b, c20);
                c21 = TWidth.MultiplyAdd(w1, b, c21);
                b = TWidth.Broadcast(x3[k]);
                c30 = TWidth.MultiplyAdd(w0, b, c30);
                c31 = TWidth.MultiplyAdd(w1, b, c31);
                b = TWidth.Broadcast(x4[k]);
                c40 = TWidth.MultiplyAdd(w0, b, c40);
                c41 = TWidth.MultiplyAdd(w1, b, c41);
                b = TWidth.Broadcast(x5[k]);
                c50 = TWidth.MultiplyAdd(w0, b, c50);
                c51 = TWidth.MultiplyAdd(w1, b, c51);
            }

            float* o = tile + j;
            TWidth.Store(c00, o);
            TWidth.Store(c01, o + n);
            TWidth.Store(c10, o + PanelRows);
            TWidth.Store(c11, o + PanelRows + n);
            TWidth.Store(c20, o + 2 * PanelRows);
            TWidth.Store(c21, o + 2 * PanelRows + n);
            TWidth.Store(c30, o + 3 * PanelRows);
            TWidth.Store(c31, o + 3 * PanelRows + n);
            TWidth.Store(c40, o + 4 * PanelRows);
            TWidth.Store(c41, o + 4 * PanelRows + n);
            TWidth.Store(c50, o + 5 * PanelRows);
            TWidth.Store(c51, o + 5 * PanelRows + n);
        }
    }
}
