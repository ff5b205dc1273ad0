using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen3.Net.Kernels.Quantized;

// Prompts (from MatMul.PrefillMinTokens tokens on, AVX-512 and AVX2): a panel of PanelRows weight rows is unpacked once
// into row-interleaved bytes, each 32-bit lane four consecutive quants of one row and a vector Count / 4 rows side by
// side, with its scales in the same row order. A tile of two row vectors × four tokens then takes, per four columns,
// two weight loads and four broadcasts of four activation bytes into eight int32 accumulators, each lane one (row,
// token)'s exact integer sum over a block (Q8_0, Q4_0) or super-block (K formats, whose integer group scales are
// applied in int32 and whose min term comes from the activations' sums of 16, as ggml does). These are scaled and
// added in float lane by lane with QuantizedReference.Dot's operations in its order, so each y[t, r] equals the
// reference's bit for bit, whatever tile, panel or thread it falls in.
internal static unsafe partial class QuantizedMatMul
{
    /// <summary>Rows per panel and per parallel work item of a prompt.</summary>
    private const int PanelRows = 32;

    private const int TileTokens = 4;

    /// <summary>The unpacked panel of this thread, grown as needed.</summary>
    [ThreadStatic]
    private static byte[]? t_panel;

    /// <summary>Whether a product of <paramref name="tokens"/> tokens goes through the panels on <paramref name="path"/>.</summary>
    private static bool UsesPanels(int tokens, KernelPath path) =>
        tokens >= MatMul.PrefillMinTokens && path is KernelPath.Avx512 or KernelPath.Avx2;

    private static void PanelRowsOf<TW, TB, TS, TI, TF>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
    {
        switch (w.Type)
        {
            case QuantizedType.Q8_0: Panels<TW, TB, TS, TI, TF, SmallPanel<Q8_0Load>>(w, a, y, tokens, rowStart, rowEnd); break;
            case QuantizedType.Q4_0: Panels<TW, TB, TS, TI, TF, SmallPanel<Q4_0Load>>(w, a, y, tokens, rowStart, rowEnd); break;
            case QuantizedType.Q4_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q4_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case QuantizedType.Q5_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q5_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            default: Panels<TW, TB, TS, TI, TF, SuperPanel<Q6_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
        }
    }

    /// <summary>Each panel of rows [rowStart, rowEnd) unpacked once, then multiplied by every tile of four tokens.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panels<TW, TB, TS, TI, TF, TFormat>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TFormat : struct, IPanelFormat
    {
        Panel panel = PanelFor(w.Columns);
        float* sums = stackalloc float[4 * TileSums];
        float* minTerms = stackalloc float[TileTokens * PanelRows];
        for (int r0 = rowStart; r0 < rowEnd; r0 += PanelRows)
        {
            int rows = Math.Min(PanelRows, rowEnd - r0);
            TFormat.Pack(w, r0, rows, panel);
            for (int t0 = 0; t0 < tokens; t0 += TileTokens)
            {
                int count = Math.Min(TileTokens, tokens - t0);
                new Span<float>(sums, 4 * TileSums).Clear();
                for (int v = 0; v < PanelRows; v += 2 * (TW.Count / 4))
                {
                    TFormat.Tile<TW, TB, TS, TI, TF>(panel, w.Columns, a, t0, count, v, sums, minTerms);
                }

                for (int i = 0; i < count; i++)
                {
                    CombinePartials(sums + i * PanelRows, rows, y + (t0 + i) * (long)w.Rows + r0);
                }
            }
        }
    }

    /// <summary>Token i of a tile of four from <paramref name="t0"/>; in a short tile the last real token stands in for the rest.</summary>
    private static int TileToken(int t0, int i, int count) => t0 + Math.Min(i, count - 1);

    /// <summary>How a family of formats unpacks a panel and multiplies a tile of it.</summary>
    private interface IPanelFormat
    {
        /// <summary>Panel row j from matrix row r0 + min(j, rows − 1): a short panel repeats its last row, whose sums are not stored.</summary>
        static abstract void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel);

        /// <summary>
        /// sums[i · PanelRows + v + j] = Σ_c W[row v + j, c]·x[t0 + i, c] for four tokens i and two row vectors from panel
        /// row v; <paramref name="minTerms"/> has the same layout, for the K formats' min terms of one super-block.
        /// </summary>
        static abstract void Tile<TW, TB, TS, TI, TF>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct;
    }

    /// <summary>
    /// This thread's panel buffer: the quants ([columns / 4][PanelRows][4] bytes), then per block the float scales
    /// (Q8_0, Q4_0: [block][PanelRows]) or per super-block d and dmin, the group scales and the min weights.
    /// </summary>
    private static Panel PanelFor(int columns)
    {
        long quants = (long)PanelRows * columns;
        long scales = 16L * columns; // the K formats' 13 bytes per column (Q8_0 and Q4_0 need 4)
        long bytes = quants + scales + 64;
        byte[]? buffer = t_panel;
        if (buffer is null || buffer.Length < bytes)
        {
            t_panel = buffer = GC.AllocateUninitializedArray<byte>(checked((int)bytes), pinned: true);
        }

        byte* start = (byte*)(((nint)Unsafe.AsPointer(ref buffer[0]) + 63) & ~(nint)63);
        return new Panel(start, start + quants, columns);
    }

    /// <summary>
    /// The layout of one unpacked panel. K formats, per super-block sb: d and dmin ([sb][PanelRows] floats each), the
    /// group scales ([sb][group][PanelRows] ints, the scale in both halves) and the min weights ([sb][pair][PanelRows],
    /// the weights of two sums of 16 in the two halves).
    /// </summary>
    private readonly struct Panel
    {
        public readonly byte* Quants;
        public readonly float* Scales;
        public readonly float* DMin;
        public readonly int* GroupScales;
        public readonly int* MinWeights;

        public Panel(byte* quants, byte* scales, int columns)
        {
            int superBlocks = columns / QuantizedFormat.SuperBlock;
            Quants = quants;
            Scales = (float*)scales;
            DMin = Scales + superBlocks * PanelRows;
            GroupScales = (int*)(DMin + superBlocks * PanelRows);
            MinWeights = GroupScales + superBlocks * 16 * PanelRows;
        }

        /// <summary>The four quants of panel row <paramref name="row"/> at columns 4·<paramref name="step"/> to 4·step + 3.</summary>
        public int* Lane(int step, int row) => (int*)Quants + (long)step * PanelRows + row;
    }

    /// <summary>Stores the 32 quants of a block (in value order, as a Vector256) as eight lanes of panel row <paramref name="row"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutLanes(in Panel panel, int firstStep, int row, Vector256<byte> quants)
    {
        Vector256<int> lanes = quants.AsInt32();
        int* o = panel.Lane(firstStep, row);
        o[0] = lanes.GetElement(0);
        o[PanelRows] = lanes.GetElement(1);
        o[2 * PanelRows] = lanes.GetElement(2);
        o[3 * PanelRows] = lanes.GetElement(3);
        o[4 * PanelRows] = lanes.GetElement(4);
        o[5 * PanelRows] = lanes.GetElement(5);
        o[6 * PanelRows] = lanes.GetElement(6);
        o[7 * PanelRows] = lanes.GetElement(7);
    }

    /// <summary>
    /// For one vector of rows of one token, t = (rowScales · tokenScale) · float(ints), the reference's product; then
    /// with <paramref name="store"/> destination = t, else destination += t − subtract (or + t when subtract is null).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale<TW, TB, TS, TI, TF>(float* destination, float* subtract, bool store, int offset, TI ints, TF rowScales, float tokenScale)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
    {
        TF term = TW.Multiply(TW.Multiply(rowScales, TW.Broadcast(tokenScale)), TW.ToSingle(ints));
        if (store)
        {
            TW.Store(term, destination + offset);
            return;
        }

        if (subtract != null)
        {
            term = TW.Subtract(term, TW.LoadFloats(subtract + offset));
        }

        TW.Store(TW.Add(TW.LoadFloats(destination + offset), term), destination + offset);
    }

    /// <summary>
    /// <see cref="Scale"/> over two row vectors × four tokens of integer sums: the rows' scales <paramref name="rows"/>
    /// (two vectors) times each token's scale at <paramref name="index"/> of its block scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleTile<TW, TB, TS, TI, TF>(
        float* destination, float* subtract, bool store, float* rows, float* s0, float* s1, float* s2, float* s3, int index,
        TI i00, TI i01, TI i02, TI i03, TI i10, TI i11, TI i12, TI i13)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
    {
        int half = TW.Count / 4;
        TF d0 = TW.LoadFloats(rows), d1 = TW.LoadFloats(rows + half);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 0, i00, d0, s0[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, half, i10, d1, s0[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, PanelRows, i01, d0, s1[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, PanelRows + half, i11, d1, s1[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 2 * PanelRows, i02, d0, s2[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 2 * PanelRows + half, i12, d1, s2[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 3 * PanelRows, i03, d0, s3[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 3 * PanelRows + half, i13, d1, s3[index]);
    }

    /// <summary>Q8_0 and Q4_0: signed quants, one float scale per row and 32-quant block.</summary>
    private readonly struct SmallPanel<TLoad> : IPanelFormat
        where TLoad : struct, ISmallBlockLoad
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel)
        {
            int blocks = w.Columns / QuantizedFormat.SmallBlock;
            for (int j = 0; j < PanelRows; j++)
            {
                byte* row = w.Row(r0 + Math.Min(j, rows - 1));
                for (int b = 0; b < blocks; b++)
                {
                    panel.Scales[b * PanelRows + j] = Half16.Read(row + b * TLoad.BlockBytes);
                    PutLanes(panel, 8 * b, j, TLoad.Load256(row, 32 * b));
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Tile<TW, TB, TS, TI, TF>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct
        {
            int half = TW.Count / 4;
            sbyte* x0 = a.TokenQuants(t0), x1 = a.TokenQuants(TileToken(t0, 1, count));
            sbyte* x2 = a.TokenQuants(TileToken(t0, 2, count)), x3 = a.TokenQuants(TileToken(t0, 3, count));
            float* s0 = a.TokenScales(t0), s1 = a.TokenScales(TileToken(t0, 1, count));
            float* s2 = a.TokenScales(TileToken(t0, 2, count)), s3 = a.TokenScales(TileToken(t0, 3, count));
            for (int b = 0; b < columns / QuantizedFormat.SmallBlock; b++)
            {
                TI i00 = default, i01 = default, i02 = default, i03 = default, i10 = default, i11 = default, i12 = default, i13 = default;
                for (int step = 8 * b; step < 8 * b + 8; step++)
                {
                    byte* p = (byte*)panel.Lane(step, v);
                    TB w0 = TW.LoadBytes(p), w1 = TW.LoadBytes(p + 4 * half);
                    TB x = TW.BroadcastQuad(x0 + 4 * step);
                    i00 = TW.DotSigned(i00, w0, x);
                    i10 = TW.DotSigned(i10, w1, x);
                    x = TW.BroadcastQuad(x1 + 4 * step);
                    i01 = TW.DotSigned(i01, w0, x);
                    i11 = TW.DotSigned(i11, w1, x);
                    x = TW.BroadcastQuad(x2 + 4 * step);
                    i02 = TW.DotSigned(i02, w0, x);
                    i12 = TW.DotSigned(i12, w1, x);
                    x = TW.BroadcastQuad(x3 + 4 * step);
                    i03 = TW.DotSigned(i03, w0, x);
                    i13 = TW.DotSigned(i13, w1, x);
                }

                ScaleTile<TW, TB, TS, TI, TF>(PartialSums(sums, b) + v, null, false, panel.Scales + b * PanelRows + v, s0, s1, s2, s3, b, i00, i01, i02, i03, i10, i11, i12, i13);
            }
        }
    }

    /// <summary>
    /// Q4_K, Q5_K, Q6_K: unsigned quants whose integer group scales are applied in int32, scaled by d per super-block,
    /// less dmin times the min term Σ m·bsum from the activations' sums of 16. Q6_K's −32 offset, written as mins (see
    /// ISuperBlockLoad), is packed with negated weights so that it lands in the integer sum, where the reference has it.
    /// </summary>
    private readonly struct SuperPanel<TLoad> : IPanelFormat
        where TLoad : struct, ISuperBlockLoad
    {
        private static int Groups => QuantizedFormat.SuperBlock >> TLoad.GroupShift;

        [SkipLocalsInit]
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel)
        {
            int superBlocks = w.Columns / QuantizedFormat.SuperBlock;
            short* groupScales = stackalloc short[16];
            short* sumWeights = stackalloc short[16];
            for (int j = 0; j < PanelRows; j++)
            {
                byte* row = w.Row(r0 + Math.Min(j, rows - 1));
                for (int sb = 0; sb < superBlocks; sb++)
                {
                    byte* block = row + sb * TLoad.BlockBytes;
                    TLoad.Header(block, out Vector256<short> scales, out Vector256<short> weights, out panel.Scales[sb * PanelRows + j], out panel.DMin[sb * PanelRows + j]);
                    scales.Store(groupScales);
                    weights.Store(sumWeights);
                    for (int g = 0; g < Groups; g++)
                    {
                        panel.GroupScales[(sb * Groups + g) * PanelRows + j] = (ushort)groupScales[g] | (groupScales[g] << 16);
                    }

                    int sign = TLoad.OffsetIsMin ? -1 : 1;
                    for (int pair = 0; pair < 8; pair++)
                    {
                        panel.MinWeights[(sb * 8 + pair) * PanelRows + j] = (ushort)(sign * sumWeights[2 * pair]) | (sign * sumWeights[2 * pair + 1] << 16);
                    }

                    for (int value = 0; value < QuantizedFormat.SuperBlock; value += 32)
                    {
                        PutLanes(panel, (sb * QuantizedFormat.SuperBlock + value) / 4, j, TLoad.Load256(block, value));
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Tile<TW, TB, TS, TI, TF>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct
        {
            int half = TW.Count / 4, groups = Groups, stepsPerGroup = QuantizedFormat.SuperBlock / 4 / groups;
            sbyte* x0 = a.TokenQuants(t0), x1 = a.TokenQuants(TileToken(t0, 1, count));
            sbyte* x2 = a.TokenQuants(TileToken(t0, 2, count)), x3 = a.TokenQuants(TileToken(t0, 3, count));
            float* s0 = a.TokenScales(t0), s1 = a.TokenScales(TileToken(t0, 1, count));
            float* s2 = a.TokenScales(TileToken(t0, 2, count)), s3 = a.TokenScales(TileToken(t0, 3, count));
            short* m0 = a.TokenSums(t0), m1 = a.TokenSums(TileToken(t0, 1, count));
            short* m2 = a.TokenSums(TileToken(t0, 2, count)), m3 = a.TokenSums(TileToken(t0, 3, count));
            for (int sb = 0; sb < columns / QuantizedFormat.SuperBlock; sb++)
            {
                // The min term first, two sums of 16 per 32-bit lane: scaled on its own, or (Q6_K) left in the integer sums.
                TI i00 = default, i01 = default, i02 = default, i03 = default, i10 = default, i11 = default, i12 = default, i13 = default;
                for (int pair = 0; pair < 8; pair++)
                {
                    int* weights = panel.MinWeights + (sb * 8 + pair) * PanelRows + v;
                    TS mw0 = TW.LoadPairs(weights), mw1 = TW.LoadPairs(weights + half);
                    int at = 16 * sb + 2 * pair;
                    TS bsum = TW.BroadcastPair(m0 + at);
                    i00 = TW.MultiplyAddPairs(i00, mw0, bsum);
                    i10 = TW.MultiplyAddPairs(i10, mw1, bsum);
                    bsum = TW.BroadcastPair(m1 + at);
                    i01 = TW.MultiplyAddPairs(i01, mw0, bsum);
                    i11 = TW.MultiplyAddPairs(i11, mw1, bsum);
                    bsum = TW.BroadcastPair(m2 + at);
                    i02 = TW.MultiplyAddPairs(i02, mw0, bsum);
                    i12 = TW.MultiplyAddPairs(i12, mw1, bsum);
                    bsum = TW.BroadcastPair(m3 + at);
                    i03 = TW.MultiplyAddPairs(i03, mw0, bsum);
                    i13 = TW.MultiplyAddPairs(i13, mw1, bsum);
                }

                if (!TLoad.OffsetIsMin)
                {
                    ScaleTile<TW, TB, TS, TI, TF>(minTerms + v, null, true, panel.DMin + sb * PanelRows + v, s0, s1, s2, s3, sb, i00, i01, i02, i03, i10, i11, i12, i13);
                    i00 = i01 = i02 = i03 = i10 = i11 = i12 = i13 = default;
                }

                int step = sb * QuantizedFormat.SuperBlock / 4;
                for (int g = 0; g < groups; g++)
                {
                    int* scales = panel.GroupScales + (sb * groups + g) * PanelRows + v;
                    TS c0 = TW.LoadPairs(scales), c1 = TW.LoadPairs(scales + half);
                    for (int end = step + stepsPerGroup; step < end; step++)
                    {
                        byte* p = (byte*)panel.Lane(step, v);
                        TB w0 = TW.LoadBytes(p), w1 = TW.LoadBytes(p + 4 * half);
                        TB x = TW.BroadcastQuad(x0 + 4 * step);
                        i00 = TW.DotUnsignedScaled(i00, w0, x, c0);
                        i10 = TW.DotUnsignedScaled(i10, w1, x, c1);
                        x = TW.BroadcastQuad(x1 + 4 * step);
                        i01 = TW.DotUnsignedScaled(i01, w0, x, c0);
                        i11 = TW.DotUnsignedScaled(i11, w1, x, c1);
                        x = TW.BroadcastQuad(x2 + 4 * step);
                        i02 = TW.DotUnsignedScaled(i02, w0, x, c0);
                        i12 = TW.DotUnsignedScaled(i12, w1, x, c1);
                        x = TW.BroadcastQuad(x3 + 4 * step);
                        i03 = TW.DotUnsignedScaled(i03, w0, x, c0);
                        i13 = TW.DotUnsignedScaled(i13, w1, x, c1);
                    }
                }

                float* subtract = TLoad.OffsetIsMin ? null : minTerms + v;
                ScaleTile<TW, TB, TS, TI, TF>(PartialSums(sums, sb) + v, subtract, false, panel.Scales + sb * PanelRows + v, s0, s1, s2, s3, sb, i00, i01, i02, i03, i10, i11, i12, i13);
            }
        }
    }
}
