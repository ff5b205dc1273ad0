using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-matrix products for a block of tokens: compute-bound once each weight is reused across tokens.
// A panel of weight rows × a K block of columns is transposed once so that one k holds the panel's rows side by side
// ([k][row]), widened to float32 (BF16 keeps its pairs of columns, widened by the tile as it loads them); a
// register-blocked tile then broadcasts x[t, k] for a few tokens and multiplies it into whole vectors of rows, keeping
// tokens × vectors accumulators in registers for the whole K block. Each y[t, r] is summed in k order within a block
// and block by block, whatever tile it falls in.
// The blocking follows the width's registers. With AVX-512's 32, a panel is 48 rows × up to 2048 columns (384 KiB,
// held in L2) and a tile 8 tokens × 3 vectors of rows: per column 3 weight loads and 8 broadcasts feed 24 FMAs into 24
// accumulators. Against the dot-product kernel this replaced (4 rows × 6 tokens read in place from the memory map,
// widened in registers, horizontal sums at the end), probe on the 1.7B shapes, one thread, alternated: 2048 → 6144 at
// 512 tokens 204–207 against 160–186 GFLOP/s, at 128 tokens 185–190 (one sample 169) against 178–182; 6144 → 2048 at
// 512 tokens 160–182 against 127–150. Packing costs about a tenth of the FMA time at 128 tokens and is paid once per
// panel, so it matters less the longer the prompt. With 16 registers, a panel is 32 rows × 256 columns (32 KiB, L1)
// and a tile 6 tokens × 2 vectors: 12 accumulators, 2 weight vectors and a broadcast.
internal static unsafe partial class MatMul
{
    /// <summary>
    /// From this many tokens on, quantized weights go through their prompt tile (QuantizedMatMul.Prefill); plain
    /// weights go through the matrix-vector kernels up to <see cref="BatchedMaxTokens"/>, or <see cref="DecodeMaxTokens"/>
    /// in a step of decoding tokens only (docs/benchmarks.md, BatchedDecodeBenchmarks).
    /// </summary>
    internal const int PrefillMinTokens = 5;

    private const int PanelRows = 32;

    private const int KBlock = 256;

    private const int TileTokens = 6;

    private const int WidePanelRows = 48;

    private const int WideKBlock = 2048;

    private const int WideTileTokens = 8;

    /// <summary>Up to this many tokens the tiles prefetch the next panel's weights (<see cref="PackAhead"/>); longer prompts stream x through L2 and keep the pack's own reads.</summary>
    private const int PackAheadMaxTokens = 16;

    /// <summary>
    /// Tokens one pass of the prompt tile multiplies for <paramref name="w"/> on <paramref name="path"/>, or <paramref name="quantizedPath"/> for a quantized matrix (1 where prompts
    /// take no tile): a product a few tokens past a multiple of it makes one more pass over every packed panel for them.
    /// </summary>
    internal static int PromptTileTokens(in WeightMatrix w, KernelPath path, KernelPath quantizedPath) => w.IsQuantized
        ? quantizedPath is KernelPath.Avx512 or KernelPath.Avx2 ? Quantized.QuantizedMatMul.TileTokens : 1
        : path == KernelPath.Avx512 ? WideTileTokens : TileTokens;

    /// <summary>
    /// Columns per K block on <paramref name="path"/>: each y[t, r] is one fused multiply-add chain per block, in k order,
    /// the blocks' sums added to y one after another.
    /// </summary>
    internal static int PrefillKBlock(KernelPath path) => path == KernelPath.Avx512 ? WideKBlock : KBlock;

    /// <summary>The packed panel, cache-line aligned; allocated on first use per thread, at the size its path needs.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_packedPanel;

    /// <summary>F16 rows widened to float32, up to 16 rows × one K block, before they are transposed; allocated on first use per thread.</summary>
    [ThreadStatic]
    private static AlignedBuffer? t_widenedRows;

    private static void PrefillRows(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        switch (path)
        {
            case KernelPath.Avx512:
                PrefillRows<Width512, Vector512<float>>(w, x, y, tokens, rowStart, rowEnd);
                break;
            case KernelPath.Avx2:
                PrefillRows<Width256, Vector256<float>>(w, x, y, tokens, rowStart, rowEnd);
                break;
            default:
                PrefillRows<Width128, Vector128<float>>(w, x, y, tokens, rowStart, rowEnd);
                break;
        }
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void PrefillRows<TWidth, TVector>(in WeightMatrix w, float* x, float* y, int tokens, int rowStart, int rowEnd)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        bool wide = TWidth.Registers >= 32;
        int panelRows = wide ? WidePanelRows : PanelRows;
        int kBlock = wide ? WideKBlock : KBlock;
        if (t_packedPanel is null || t_packedPanel.Length < kBlock * panelRows)
        {
            t_packedPanel = new AlignedBuffer(kBlock * panelRows);
        }

        float* packed = t_packedPanel.Pointer;
        float* tile = stackalloc float[WideTileTokens * WidePanelRows];
        int columns = w.Columns;
        bool packAhead = tokens <= PackAheadMaxTokens && Sse.IsSupported;
        bool pairs = w.Type == TensorDType.BF16 && columns % 2 == 0;
        bool kept = w.Panels != null && w.PanelRows == panelRows && rowStart % panelRows == 0;
        for (int r0 = rowStart; r0 < rowEnd; r0 += panelRows)
        {
            int rows = Math.Min(panelRows, rowEnd - r0);
            for (int k0 = 0; k0 < columns; k0 += kBlock)
            {
                int kc = Math.Min(kBlock, columns - k0);
                if (kept)
                {
                    PanelTiles<TWidth, TVector, Bf16Pairs>(w, KeptPanel(w, r0, k0, panelRows), kc, x, y, tokens, r0, rows, k0, rowEnd, tile, packAhead, kept: true);
                    continue;
                }

                Pack<TWidth, TVector>(w, r0, rows, k0, kc, packed, pairs);
                if (pairs)
                {
                    PanelTiles<TWidth, TVector, Bf16Pairs>(w, packed, kc, x, y, tokens, r0, rows, k0, rowEnd, tile, packAhead, kept: false);
                }
                else
                {
                    PanelTiles<TWidth, TVector, Singles>(w, packed, kc, x, y, tokens, r0, rows, k0, rowEnd, tile, packAhead, kept: false);
                }
            }
        }
    }

    /// <summary>
    /// Every token's tiles over one packed panel, the first of them prefetching weights when <paramref name="packAhead"/>:
    /// the next panel's from the map for the next Pack; where the panels are <paramref name="kept"/>, on Intel this
    /// panel's own a lead ahead of the reads (<see cref="StreamAhead"/>: two to eight BF16 streams decoded 12–20% faster
    /// on a Xeon than with the next panel fetched into L2, docs/benchmarks.md), elsewhere the next kept panel into L2,
    /// which matched the matrix-vector kernel on Zen 5.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PanelTiles<TWidth, TVector, TForm>(
        in WeightMatrix w, float* packed, int kc, float* x, float* y, int tokens, int r0, int rows, int k0, int rowEnd, float* tile, bool packAhead, bool kept)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TForm : struct, IPanelForm
    {
        bool wide = TWidth.Registers >= 32;
        if (packAhead && kept && PrefetchLines)
        {
            int panelRows = wide ? WidePanelRows : PanelRows;
            var stream = new StreamAhead((byte*)packed + StepLeadBytes, (long)kc * panelRows * sizeof(ushort), panelRows * sizeof(ushort));
            Tiles<TWidth, TVector, TForm, StreamAhead>(packed, kc, x, y, tokens, w.Rows, w.Columns, r0, rows, k0, tile, ref stream);
        }
        else if (packAhead)
        {
            int kBlock = wide ? WideKBlock : KBlock, panelRows = wide ? WidePanelRows : PanelRows;
            var ahead = kept ? NextKeptPanel(w, r0, k0, kBlock, rowEnd, panelRows) : NextPack(w, r0, rows, k0, kBlock, rowEnd, panelRows);
            Tiles<TWidth, TVector, TForm, PackAhead>(packed, kc, x, y, tokens, w.Rows, w.Columns, r0, rows, k0, tile, ref ahead);
        }
        else
        {
            var none = default(NoPackAhead);
            Tiles<TWidth, TVector, TForm, NoPackAhead>(packed, kc, x, y, tokens, w.Rows, w.Columns, r0, rows, k0, tile, ref none);
        }
    }

    /// <summary>Every token's tiles over one packed panel, the first of them stepping <paramref name="ahead"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tiles<TWidth, TVector, TForm, TAhead>(
        float* packed, int kc, float* x, float* y, int tokens, int yRows, int columns, int r0, int rows, int k0, float* tile, ref TAhead ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TForm : struct, IPanelForm
        where TAhead : struct, IPackAhead
    {
        bool wide = TWidth.Registers >= 32;
        int panelRows = wide ? WidePanelRows : PanelRows;
        int tileTokens = wide ? WideTileTokens : TileTokens;
        for (int t0 = 0; t0 < tokens; t0 += tileTokens)
        {
            int count = Math.Min(tileTokens, tokens - t0);
            float* xt = x + (long)t0 * columns + k0;
            float* yt = y + (long)t0 * yRows + r0;
            if (rows == panelRows)
            {
                Tile<TWidth, TVector, TForm, TAhead>(packed, kc, xt, columns, count, yt, yRows, accumulate: k0 > 0, ref ahead);
                continue;
            }

            // A short panel repeats its last row (see Pack); only the real rows are kept.
            Tile<TWidth, TVector, TForm, TAhead>(packed, kc, xt, columns, count, tile, panelRows, accumulate: false, ref ahead);
            StoreTile(tile, panelRows, rows, count, yt, yRows, accumulate: k0 > 0);
        }
    }

    /// <summary>
    /// The weights the Pack after the one of rows [r0, r0 + rows) × K block k0 will read: the same rows' next K block,
    /// or the next panel's first; nothing past <paramref name="rowEnd"/>.
    /// </summary>
    private static PackAhead NextPack(in WeightMatrix w, int r0, int rows, int k0, int kBlock, int rowEnd, int panelRows)
    {
        int columns = w.Columns;
        if (k0 + kBlock < columns)
        {
            k0 += kBlock;
        }
        else
        {
            r0 += panelRows;
            k0 = 0;
            rows = Math.Min(panelRows, rowEnd - r0);
        }

        return rows <= 0 ? default : new PackAhead(w.Row(r0) + (long)k0 * w.ElementSize, w.RowStride, (long)Math.Min(kBlock, columns - k0) * w.ElementSize, rows);
    }

    /// <summary>The kept panel after the one of rows [r0, r0 + panel rows) × K block k0, which lies right after it; nothing past <paramref name="rowEnd"/>.</summary>
    private static PackAhead NextKeptPanel(in WeightMatrix w, int r0, int k0, int kBlock, int rowEnd, int panelRows)
    {
        if (k0 + kBlock < w.Columns)
        {
            k0 += kBlock;
        }
        else
        {
            r0 += panelRows;
            k0 = 0;
        }

        return r0 >= rowEnd ? default : new PackAhead((byte*)KeptPanel(w, r0, k0, panelRows), 0, (long)Math.Min(kBlock, w.Columns - k0) * panelRows * sizeof(ushort), 1);
    }

    /// <summary>
    /// Rows of weights (a length of bytes each, a stride apart) prefetched into L2 two lines per step. A tile over few
    /// tokens is short and compute-bound while the next Pack waits on memory with nothing to compute: stepped from the
    /// tile's column loop, the next panel's reads overlap this one's multiply-adds.
    /// </summary>
    private struct PackAhead(byte* first, long stride, long length, int rows) : IPackAhead
    {
        private byte* _line = first, _rowStart = first;
        private int _rows = rows;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step()
        {
            if (_rows <= 0)
            {
                return;
            }

            Sse.Prefetch1(_line);
            Sse.Prefetch1(_line + 64);
            _line += 128;
            if (_line >= _rowStart + length)
            {
                _rowStart += stride;
                _line = _rowStart;
                _rows--;
            }
        }
    }

    /// <summary>
    /// A kept panel's own bytes prefetched into L1 <see cref="StepLeadBytes"/> ahead of the tile's reads, at the pace it
    /// reads them (two steps per pair of columns, each half a pair's bytes), up to that far into the next panel, which
    /// lies right after it; the later tiles over the panel find the prefetch done.
    /// </summary>
    private struct StreamAhead(byte* first, long length, int bytesPerStep) : IPackAhead
    {
        private byte* _next = first, _reads = first;
        private readonly byte* _end = first + length;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step()
        {
            _reads += bytesPerStep;
            while (_next < _reads && _next < _end)
            {
                Sse.Prefetch0(_next);
                _next += 64;
            }
        }
    }

    /// <summary>How a packed panel holds its weights: one float32 per lane, or a BF16 pair of columns per 32-bit lane.</summary>
    private interface IPanelForm
    {
        static abstract bool Pairs { get; }
    }

    private readonly struct Singles : IPanelForm
    {
        public static bool Pairs => false;
    }

    /// <summary>
    /// BF16 pairs as stored: the pack transposes 32-bit lanes of two weights (half the shuffles and stores of widened
    /// lanes, which took as long as the multiply-adds for eight decoding streams), and the tile widens each lane twice as
    /// it loads it, shifted up for the even column and masked for the odd one.
    /// </summary>
    private readonly struct Bf16Pairs : IPanelForm
    {
        public static bool Pairs => true;
    }

    /// <summary>What a tile steps once per column: the next panel's prefetch, or nothing, compiled away.</summary>
    private interface IPackAhead
    {
        void Step();
    }

    /// <summary>No prefetch: long prompts, whose tiles need every register.</summary>
    private struct NoPackAhead : IPackAhead
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly void Step()
        {
        }
    }

    /// <summary>
    /// packed[k · panel rows + j] = W[r0 + min(j, rows − 1), k0 + k] as float32, for k in [0, kc): a short panel repeats
    /// its last row, so every lane holds a real weight and the extra sums are simply not stored. With
    /// <paramref name="pairs"/> (BF16 weights, an even number of columns), lane j of packed[p · panel rows] holds the
    /// row's BF16 pair of columns k0 + 2p and k0 + 2p + 1 as they are stored: the transpose moves 32-bit lanes of two
    /// weights each, half as many as float32 lanes, and the tile widens each pair as it loads it (<see cref="Bf16Pairs"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Pack<TWidth, TVector>(in WeightMatrix w, int r0, int rows, int k0, int kc, float* packed, bool pairs)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        int panelRows = TWidth.Registers >= 32 ? WidePanelRows : PanelRows;
        for (int g = 0; g < panelRows; g += TWidth.Count)
        {
            int first = Math.Min(g, rows - 1);
            int count = Math.Clamp(rows - g, 1, TWidth.Count);
            switch (w.Type)
            {
                case TensorDType.BF16 when pairs:
                    PackGroup<TWidth, TVector, F32>(w.Row(r0 + first), w.RowStride, count, k0 / 2, kc / 2, packed + g);
                    break;
                case TensorDType.BF16:
                    PackGroup<TWidth, TVector, Bf16>(w.Row(r0 + first), w.RowStride, count, k0, kc, packed + g);
                    break;
                case TensorDType.F32:
                    PackGroup<TWidth, TVector, F32>(w.Row(r0 + first), w.RowStride, count, k0, kc, packed + g);
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

                    PackGroup<TWidth, TVector, F32>((byte*)widened, (long)kc * sizeof(float), count, 0, kc, packed + g);
                    break;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="w"/> can be kept in the prompt tile's layout (<see cref="PackPanels"/>): BF16 with an even
    /// number of columns, whose panels hold the stored pairs, as many bytes as the matrix.
    /// </summary>
    internal static bool CanKeepPanels(in WeightMatrix w) => !w.IsQuantized && w.Type == TensorDType.BF16 && w.Columns % 2 == 0;

    /// <summary>Rows per panel of the prompt tile on <paramref name="path"/>, and so of the panels kept for it.</summary>
    internal static int PromptPanelRows(KernelPath path) => path == KernelPath.Avx512 ? WidePanelRows : PanelRows;

    /// <summary>Panels of <paramref name="w"/> on <paramref name="path"/>, the last one short where the rows run out.</summary>
    internal static int PanelCount(in WeightMatrix w, KernelPath path) => (w.Rows + PromptPanelRows(path) - 1) / PromptPanelRows(path);

    /// <summary>Bytes of <paramref name="w"/>'s kept panels on <paramref name="path"/>: whole panels, two bytes a weight.</summary>
    internal static long PanelBytes(in WeightMatrix w, KernelPath path) => (long)PanelCount(w, path) * PromptPanelRows(path) * w.Columns * sizeof(ushort);

    /// <summary>
    /// Panels [<paramref name="first"/>, <paramref name="end"/>) of <paramref name="w"/> packed for the prompt tile on
    /// <paramref name="path"/> into <paramref name="panels"/> (<see cref="PanelBytes"/> long), each panel's K blocks
    /// one after another as <see cref="Pack"/> lays them out with pairs: a tile over them reads what it would have
    /// packed, so its sums are the same bit for bit. Panels of AVX2 and portable share their layout.
    /// </summary>
    internal static void PackPanels(in WeightMatrix w, byte* panels, int first, int end, KernelPath path)
    {
        if (!CanKeepPanels(w) || path == KernelPath.Scalar)
        {
            throw new ArgumentException($"A {w.Type} matrix of {w.Columns} columns has no panels on the {path} path.", nameof(w));
        }

        var target = w.WithPanels(panels, PromptPanelRows(path));
        switch (path)
        {
            case KernelPath.Avx512:
                PackPanels<Width512, Vector512<float>>(target, first, end);
                break;
            case KernelPath.Avx2:
                PackPanels<Width256, Vector256<float>>(target, first, end);
                break;
            default:
                PackPanels<Width128, Vector128<float>>(target, first, end);
                break;
        }
    }

    private static void PackPanels<TWidth, TVector>(in WeightMatrix w, int first, int end)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        bool wide = TWidth.Registers >= 32;
        int panelRows = wide ? WidePanelRows : PanelRows;
        int kBlock = wide ? WideKBlock : KBlock;
        for (int p = first; p < end; p++)
        {
            int r0 = p * panelRows;
            for (int k0 = 0; k0 < w.Columns; k0 += kBlock)
            {
                Pack<TWidth, TVector>(w, r0, Math.Min(panelRows, w.Rows - r0), k0, Math.Min(kBlock, w.Columns - k0), KeptPanel(w, r0, k0, panelRows), pairs: true);
            }
        }
    }

    /// <summary>The kept panel of rows from <paramref name="r0"/> (a multiple of <paramref name="panelRows"/>) × the K block from <paramref name="k0"/>.</summary>
    private static float* KeptPanel(in WeightMatrix w, int r0, int k0, int panelRows) =>
        (float*)(w.Panels + ((long)r0 * w.Columns + (long)k0 * panelRows) * sizeof(ushort));

    /// <summary>
    /// One vector of lanes of the panel from <paramref name="count"/> rows (the last one repeated up to a vector's worth),
    /// square blocks widened and transposed in registers so every store is a whole vector; the columns past the last
    /// whole block one at a time. Packing one element at a time, each store to a different cache line, took 21% of a
    /// 512-token AVX2 prefill.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void PackGroup<TWidth, TVector, TLoad>(byte* first, long stride, int count, int k0, int kc, float* lanes)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        int panelRows = TWidth.Registers >= 32 ? WidePanelRows : PanelRows;
        byte** row = stackalloc byte*[16];
        for (int j = 0; j < TWidth.Count; j++)
        {
            row[j] = first + Math.Min(j, count - 1) * stride;
        }

        int vectorEnd = kc - kc % TWidth.Count;
        for (int k = 0; k < vectorEnd; k += TWidth.Count)
        {
            TWidth.StoreTransposed<TLoad>(row, k0 + k, lanes + k * panelRows, panelRows);
        }

        for (int k = vectorEnd; k < kc; k++)
        {
            for (int j = 0; j < TWidth.Count; j++)
            {
                lanes[k * panelRows + j] = TLoad.Load(row[j], k0 + k);
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
    /// y[i · yStride + j] (+)= Σ_k packed[k, j] · x_i[k] over the K block, for the whole panel and up to 8 tokens (32
    /// registers: 3 vectors of rows at a time, 24 accumulators) or 6 (16 registers: 2 vectors, 12 accumulators). Token i
    /// of a short tile repeats the last token; only the first <paramref name="count"/> are stored.
    /// </summary>
    private static void Tile<TWidth, TVector, TForm, TAhead>(float* packed, int kc, float* x, long stride, int count, float* y, long yStride, bool accumulate, ref TAhead ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TForm : struct, IPanelForm
        where TAhead : struct, IPackAhead
    {
        // A short tile computes only the tokens it has, rounded up: the token a step of 8-token prompt chunks adds for a
        // decoding stream costs an eighth of a tile, not a whole one.
        switch (count)
        {
            case 1: Tile<TWidth, TVector, TForm, OneToken, TAhead>(packed, kc, x, stride, count, y, yStride, accumulate, ref ahead); break;
            case 2: Tile<TWidth, TVector, TForm, TwoTokens, TAhead>(packed, kc, x, stride, count, y, yStride, accumulate, ref ahead); break;
            case 3 or 4: Tile<TWidth, TVector, TForm, FourTokens, TAhead>(packed, kc, x, stride, count, y, yStride, accumulate, ref ahead); break;
            default: Tile<TWidth, TVector, TForm, EightTokens, TAhead>(packed, kc, x, stride, count, y, yStride, accumulate, ref ahead); break;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TWidth, TVector, TForm, TTokens, TAhead>(float* packed, int kc, float* x, long stride, int count, float* y, long yStride, bool accumulate, ref TAhead ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TForm : struct, IPanelForm
        where TTokens : struct, ITokenCount
        where TAhead : struct, IPackAhead
    {
        bool wide = TWidth.Registers >= 32;
        // Tokens this tile computes: TTokens.Count, at most the width's tile (6 with 16 registers).
        int computed = Math.Min(TTokens.Count, wide ? WideTileTokens : TileTokens);
        int panelRows = wide ? WidePanelRows : PanelRows;
        int n = TWidth.Count;
        float* x0 = TokenRow(x, stride, 0, count), x1 = TokenRow(x, stride, 1, count), x2 = TokenRow(x, stride, 2, count), x3 = TokenRow(x, stride, 3, count);
        float* x4 = TokenRow(x, stride, 4, count), x5 = TokenRow(x, stride, 5, count);
        float* x6 = wide ? TokenRow(x, stride, 6, count) : null, x7 = wide ? TokenRow(x, stride, 7, count) : null;
        TAhead prefetch = ahead; // a local, so its fields stay in registers
        int step = TForm.Pairs ? 2 : 1;
        TVector highHalves = TWidth.HighHalves;
        for (int j = 0; j < panelRows; j += wide ? 3 * n : 2 * n)
        {
            TVector c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
            TVector c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
            TVector c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
            TVector c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
            float* p = packed + j;
            for (int k0 = 0; k0 < kc; k0 += step, p += panelRows)
            {
                prefetch.Step();
                if (TForm.Pairs) prefetch.Step(); // the next panel's bytes over half as many steps

                // Columns k0 and, with pairs, k0 + 1 in that order: each sum is the same chain of multiply-adds either way.
                for (int h = 0; h < step; h++)
                {
                    int k = k0 + h;
                    TVector w0, w1, w2;
                    if (!TForm.Pairs)
                    {
                        (w0, w1, w2) = (TWidth.Load(p), TWidth.Load(p + n), wide ? TWidth.Load(p + 2 * n) : default);
                    }
                    else if (h == 0)
                    {
                        (w0, w1, w2) = (TWidth.LoadEvenOfPairs(p), TWidth.LoadEvenOfPairs(p + n), wide ? TWidth.LoadEvenOfPairs(p + 2 * n) : default);
                    }
                    else
                    {
                        (w0, w1, w2) = (TWidth.LoadOddOfPairs(p, highHalves), TWidth.LoadOddOfPairs(p + n, highHalves), wide ? TWidth.LoadOddOfPairs(p + 2 * n, highHalves) : default);
                    }

                    Fma<TWidth, TVector>(w0, w1, w2, x0[k], ref c00, ref c01, ref c02);
                    if (computed > 1) Fma<TWidth, TVector>(w0, w1, w2, x1[k], ref c10, ref c11, ref c12);
                    if (computed > 2) Fma<TWidth, TVector>(w0, w1, w2, x2[k], ref c20, ref c21, ref c22);
                    if (computed > 3) Fma<TWidth, TVector>(w0, w1, w2, x3[k], ref c30, ref c31, ref c32);
                    if (computed > 4) Fma<TWidth, TVector>(w0, w1, w2, x4[k], ref c40, ref c41, ref c42);
                    if (computed > 5) Fma<TWidth, TVector>(w0, w1, w2, x5[k], ref c50, ref c51, ref c52);
                    if (computed > 6) Fma<TWidth, TVector>(w0, w1, w2, x6[k], ref c60, ref c61, ref c62);
                    if (computed > 7) Fma<TWidth, TVector>(w0, w1, w2, x7[k], ref c70, ref c71, ref c72);
                }
            }

            float* o = y + j;
            StoreRow<TWidth, TVector>(o, accumulate, c00, c01, c02);
            if (count > 1) StoreRow<TWidth, TVector>(o + yStride, accumulate, c10, c11, c12);
            if (count > 2) StoreRow<TWidth, TVector>(o + 2 * yStride, accumulate, c20, c21, c22);
            if (count > 3) StoreRow<TWidth, TVector>(o + 3 * yStride, accumulate, c30, c31, c32);
            if (count > 4) StoreRow<TWidth, TVector>(o + 4 * yStride, accumulate, c40, c41, c42);
            if (count > 5) StoreRow<TWidth, TVector>(o + 5 * yStride, accumulate, c50, c51, c52);
            if (wide && count > 6) StoreRow<TWidth, TVector>(o + 6 * yStride, accumulate, c60, c61, c62);
            if (wide && count > 7) StoreRow<TWidth, TVector>(o + 7 * yStride, accumulate, c70, c71, c72);
        }

        ahead = prefetch;
    }

    /// <summary>One token's x[k] times the tile's vectors of weights (the third only with 32 registers), added to its sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma<TWidth, TVector>(TVector w0, TVector w1, TVector w2, float x, ref TVector c0, ref TVector c1, ref TVector c2)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        TVector b = TWidth.Broadcast(x);
        c0 = TWidth.MultiplyAdd(w0, b, c0);
        c1 = TWidth.MultiplyAdd(w1, b, c1);
        if (TWidth.Registers >= 32) c2 = TWidth.MultiplyAdd(w2, b, c2);
    }

    /// <summary>
    /// One token's sums of the tile's vectors of rows (the third only with 32 registers) into y; after the first K block
    /// they are added to the earlier blocks' sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TWidth, TVector>(float* y, bool accumulate, TVector a, TVector b, TVector c)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        bool wide = TWidth.Registers >= 32;
        int n = TWidth.Count;
        if (accumulate)
        {
            a = TWidth.Add(a, TWidth.Load(y));
            b = TWidth.Add(b, TWidth.Load(y + n));
            if (wide) c = TWidth.Add(c, TWidth.Load(y + 2 * n));
        }

        TWidth.Store(a, y);
        TWidth.Store(b, y + n);
        if (wide) TWidth.Store(c, y + 2 * n);
    }
}
