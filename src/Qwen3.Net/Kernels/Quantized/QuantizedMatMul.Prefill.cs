using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

// Prompts (from MatMul.PrefillMinTokens tokens on, AVX-512 and AVX2): a panel of PanelRows weight rows is unpacked once
// into row-interleaved bytes, each 32-bit lane four consecutive quants of one row and a vector Count / 4 rows side by
// side, with its scales in the same row order. A tile of two row vectors × four tokens then takes, per four columns,
// two weight loads and four broadcasts of four activation bytes into eight int32 accumulators, each lane one (row,
// token)'s exact integer sum over a block (Q8_0, Q4_0, Q5_0) or super-block (K formats, whose byte products are summed in
// shorts for as many steps as cannot overflow, then weighted by their integer group scales into int32, and whose min
// term comes from the activations' sums of 16, as ggml does). With AVX-VNNI, Q8_0, Q4_0 and Q5_0 panels hold their quants
// biased to unsigned bytes, so that each product is one vpdpbusd with no sign fix. The int32 sums are scaled and
// added in float lane by lane with QuantizedReference.Dot's operations in its order, so each y[t, r] equals the
// reference's bit for bit, whatever tile, panel or thread it falls in.
internal static unsafe partial class QuantizedMatMul
{
    /// <summary>Rows per panel and per parallel work item of a prompt.</summary>
    internal const int PanelRows = 32;

    /// <summary>Tokens one pass of the int8 prompt tile multiplies.</summary>
    internal const int TileTokens = 4;

    /// <summary>The unpacked panel of this thread, grown as needed.</summary>
    [ThreadStatic]
    private static byte[]? t_panel;

    /// <summary>
    /// From this many tokens on, a matrix with kept panels goes through the tile. One token reads less through the
    /// matrix-vector kernel: the tile computes two tokens at least, from panels 6% larger than the blocks.
    /// </summary>
    internal const int KeptPanelMinTokens = 2;

    /// <summary>
    /// Whether a product of <paramref name="tokens"/> tokens of <paramref name="w"/> goes through the panels on
    /// <paramref name="path"/>: a prompt's, or from <see cref="KeptPanelMinTokens"/> on where the panels are kept.
    /// </summary>
    private static bool UsesPanels(in QuantizedMatrix w, int tokens, KernelPath path) =>
        path is KernelPath.Avx512 or KernelPath.Avx2 && (tokens >= PanelMinTokens(w.Type) || (w.Panels != null && tokens >= KeptPanelMinTokens));

    /// <summary>
    /// From this many tokens on, a K-format matrix goes through the tile: below it, the matrix-vector kernels in groups of
    /// four, each row read from memory once and multiplied from the cache for the next group, cost less than unpacking
    /// every panel into bytes and scales at each step.
    /// </summary>
    private const int SuperPanelMinTokens = 11;

    /// <summary>Tokens from which a <paramref name="type"/> matrix that is not kept goes through the tile.</summary>
    private static int PanelMinTokens(GgmlType type) =>
        QuantizedFormat.IsSuperBlock(type) ? SuperPanelMinTokens : MatMul.PrefillMinTokens;

    /// <summary>
    /// Whether <paramref name="w"/> can be kept unpacked (<see cref="PackPanels"/>): Q8_0, whose panel of a byte per quant
    /// and a float scale per block is 6% larger than its blocks. The other formats unpack to about twice their size.
    /// </summary>
    internal static bool CanKeepPanels(in QuantizedMatrix w) => w.Type == GgmlType.Q8_0;

    /// <summary>How many 32-column blocks ahead the first pass over a kept panel fetches it (4 KiB).</summary>
    private const int KeptAheadBlocks = 4;

    /// <summary>Kept panels hold the quants biased to unsigned bytes where the tiles that read them take them so (AVX-VNNI).</summary>
    private static bool KeptBiased => AvxVnni.IsSupported;

    /// <summary>Panels of <paramref name="w"/>, the last one short where the rows run out.</summary>
    internal static int PanelCount(in QuantizedMatrix w) => (w.Rows + PanelRows - 1) / PanelRows;

    /// <summary>Bytes of <paramref name="w"/>'s kept panels.</summary>
    internal static long PanelBytes(in QuantizedMatrix w) => PanelCount(w) * KeptPanelStride(w.Columns);

    /// <summary>
    /// Panels [<paramref name="first"/>, <paramref name="end"/>) of a Q8_0 matrix unpacked into <paramref name="panels"/>
    /// (<see cref="PanelBytes"/> long), each as a prompt's pack lays it out for the AVX-512 and AVX2 tiles, so a tile over
    /// them computes what it would over its own pack, bit for bit.
    /// </summary>
    internal static void PackPanels(in QuantizedMatrix w, byte* panels, int first, int end)
    {
        if (!CanKeepPanels(w))
        {
            throw new ArgumentException($"{w.Type} matrices are not kept in panels.", nameof(w));
        }

        for (int p = first; p < end; p++)
        {
            int r0 = p * PanelRows;
            var panel = KeptPanel(w.Columns, panels, p);
            if (KeptBiased)
            {
                SmallPanel<Q8_0Load, BiasedQuants>.Pack(w, r0, Math.Min(PanelRows, w.Rows - r0), panel);
            }
            else
            {
                SmallPanel<Q8_0Load, SignedQuants>.Pack(w, r0, Math.Min(PanelRows, w.Rows - r0), panel);
            }
        }
    }

    /// <summary>Bytes from one kept panel to the next: the quants, then a float scale per row and block, to a cache line.</summary>
    private static long KeptPanelStride(int columns) => ((long)PanelRows * columns + sizeof(float) * (long)columns + 63) & ~63L;

    private static Panel KeptPanel(int columns, byte* panels, int p)
    {
        byte* start = panels + p * KeptPanelStride(columns);
        return new Panel(start, start + (long)PanelRows * columns, columns, kept: true);
    }

    private static void PanelRowsOf<TW, TB, TS, TI, TF>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
    {
        switch (w.Type)
        {
            case GgmlType.Q8_0 when TW.ExactUnsignedBytes: Panels<TW, TB, TS, TI, TF, SmallPanel<Q8_0Load, BiasedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q4_0 when TW.ExactUnsignedBytes: Panels<TW, TB, TS, TI, TF, SmallPanel<Q4_0Load, BiasedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q5_0 when TW.ExactUnsignedBytes: Panels<TW, TB, TS, TI, TF, SmallPanel<Q5_0Load, BiasedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q8_0: Panels<TW, TB, TS, TI, TF, SmallPanel<Q8_0Load, SignedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q4_0: Panels<TW, TB, TS, TI, TF, SmallPanel<Q4_0Load, SignedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q5_0: Panels<TW, TB, TS, TI, TF, SmallPanel<Q5_0Load, SignedQuants>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q4_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q4_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q5_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q5_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q3_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q3_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            case GgmlType.Q2_K: Panels<TW, TB, TS, TI, TF, SuperPanel<Q2_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
            default: Panels<TW, TB, TS, TI, TF, SuperPanel<Q6_KLoad>>(w, a, y, tokens, rowStart, rowEnd); break;
        }
    }

    /// <summary>Each panel of rows [rowStart, rowEnd) unpacked once, then multiplied by every tile of four tokens.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Panels<TW, TB, TS, TI, TF, TFormat>(in QuantizedMatrix w, in QuantizedActivations a, float* y, int tokens, int rowStart, int rowEnd)
        where TW : struct, IInt8Tile<TB, TS, TI, TF>
        where TB : struct
        where TS : struct
        where TI : struct
        where TF : struct
        where TFormat : struct, IPanelFormat
    {
        bool kept = w.Panels != null && TFormat.ReadsKeptPanels && rowStart % PanelRows == 0;
        Panel packed = kept ? default : PanelFor(w.Columns);
        float* sums = stackalloc float[4 * TileSums];
        float* minTerms = stackalloc float[TileTokens * PanelRows];
        for (int r0 = rowStart; r0 < rowEnd; r0 += PanelRows)
        {
            int rows = Math.Min(PanelRows, rowEnd - r0);
            Panel panel = kept ? KeptPanel(w.Columns, w.Panels, r0 / PanelRows) : packed;
            if (!kept)
            {
                TFormat.Pack(w, r0, rows, panel);
            }

            for (int t0 = 0; t0 < tokens; t0 += TileTokens)
            {
                int count = Math.Min(TileTokens, tokens - t0);
                new Span<float>(sums, 4 * TileSums).Clear();
                for (int v = 0; v < PanelRows; v += 2 * (TW.Count / 4))
                {
                    if (count <= 2)
                    {
                        TFormat.Tile<TW, TB, TS, TI, TF, TwoTokens>(panel, w.Columns, a, t0, count, v, sums, minTerms);
                    }
                    else
                    {
                        TFormat.Tile<TW, TB, TS, TI, TF, FourTokens>(panel, w.Columns, a, t0, count, v, sums, minTerms);
                    }
                }

                for (int i = 0; i < count; i++)
                {
                    CombinePartials(sums + i * PanelRows, rows, y + (t0 + i) * (long)w.Rows + r0);
                }
            }
        }
    }

    /// <summary>How a family of formats unpacks a panel and multiplies a tile of it.</summary>
    private interface IPanelFormat
    {
        /// <summary>Whether this format's panels are laid out as the kept ones (<see cref="PackPanels"/>).</summary>
        static abstract bool ReadsKeptPanels { get; }

        /// <summary>Panel row j from matrix row r0 + min(j, rows − 1): a short panel repeats its last row, whose sums are not stored.</summary>
        static abstract void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel);

        /// <summary>
        /// sums[i · PanelRows + v + j] = Σ_c W[row v + j, c]·x[t0 + i, c] for four tokens i and two row vectors from panel
        /// row v; <paramref name="minTerms"/> has the same layout, for the K formats' min terms of one super-block.
        /// </summary>
        static abstract void Tile<TW, TB, TS, TI, TF, TTokens>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct
            where TTokens : struct, ITokenCount;
    }

    /// <summary>
    /// This thread's panel buffer: the quants ([columns / 4][PanelRows][4] bytes), then per block the float scales
    /// (Q8_0, Q4_0, Q5_0: [block][PanelRows]) or per super-block d and dmin, the group scales and the min weights.
    /// </summary>
    private static Panel PanelFor(int columns)
    {
        long quants = (long)PanelRows * columns;
        long scales = 16L * columns; // the K formats' 13 bytes per column (the 32-quant blocks need 4)
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

        /// <summary>Whether the panel was kept at load: its first pass reads it from memory, not from the cache a pack left it in.</summary>
        public readonly bool Kept;

        public Panel(byte* quants, byte* scales, int columns, bool kept = false)
        {
            int superBlocks = columns / GgmlTypes.SuperBlock;
            Kept = kept;
            Quants = quants;
            Scales = (float*)scales;
            DMin = Scales + superBlocks * PanelRows;
            GroupScales = (int*)(DMin + superBlocks * PanelRows);
            MinWeights = GroupScales + superBlocks * 16 * PanelRows;
        }

        /// <summary>The four quants of panel row <paramref name="row"/> at columns 4·<paramref name="step"/> to 4·step + 3.</summary>
        public int* Lane(int step, int row) => (int*)Quants + (long)step * PanelRows + row;
    }

    /// <summary>
    /// Eight 32-bit lanes of each of eight panel rows, stored transposed from <paramref name="first"/>: lane k of every
    /// row in the eight ints at first + k·PanelRows (the layout of the quants, four to a lane in value order, of the
    /// group scales and of the min weights), so that each step's eight rows are one store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutLanes(
        int* first,
        Vector256<byte> q0, Vector256<byte> q1, Vector256<byte> q2, Vector256<byte> q3, Vector256<byte> q4, Vector256<byte> q5, Vector256<byte> q6, Vector256<byte> q7)
    {
        // Pairs of rows interleaved, then quads, then the 128-bit halves: step k of rows 0-3 and 4-7 meet in one vector.
        Vector256<long> t0 = Avx2.UnpackLow(q0.AsInt32(), q1.AsInt32()).AsInt64(), t1 = Avx2.UnpackHigh(q0.AsInt32(), q1.AsInt32()).AsInt64();
        Vector256<long> t2 = Avx2.UnpackLow(q2.AsInt32(), q3.AsInt32()).AsInt64(), t3 = Avx2.UnpackHigh(q2.AsInt32(), q3.AsInt32()).AsInt64();
        Vector256<long> t4 = Avx2.UnpackLow(q4.AsInt32(), q5.AsInt32()).AsInt64(), t5 = Avx2.UnpackHigh(q4.AsInt32(), q5.AsInt32()).AsInt64();
        Vector256<long> t6 = Avx2.UnpackLow(q6.AsInt32(), q7.AsInt32()).AsInt64(), t7 = Avx2.UnpackHigh(q6.AsInt32(), q7.AsInt32()).AsInt64();
        Vector256<long> s0 = Avx2.UnpackLow(t0, t2), s1 = Avx2.UnpackHigh(t0, t2), s2 = Avx2.UnpackLow(t1, t3), s3 = Avx2.UnpackHigh(t1, t3);
        Vector256<long> s4 = Avx2.UnpackLow(t4, t6), s5 = Avx2.UnpackHigh(t4, t6), s6 = Avx2.UnpackLow(t5, t7), s7 = Avx2.UnpackHigh(t5, t7);
        Avx2.Permute2x128(s0, s4, 0x20).Store((long*)(first));
        Avx2.Permute2x128(s1, s5, 0x20).Store((long*)(first + 1 * PanelRows));
        Avx2.Permute2x128(s2, s6, 0x20).Store((long*)(first + 2 * PanelRows));
        Avx2.Permute2x128(s3, s7, 0x20).Store((long*)(first + 3 * PanelRows));
        Avx2.Permute2x128(s0, s4, 0x31).Store((long*)(first + 4 * PanelRows));
        Avx2.Permute2x128(s1, s5, 0x31).Store((long*)(first + 5 * PanelRows));
        Avx2.Permute2x128(s2, s6, 0x31).Store((long*)(first + 6 * PanelRows));
        Avx2.Permute2x128(s3, s7, 0x31).Store((long*)(first + 7 * PanelRows));
    }

    /// <summary>The matrix row of panel row <paramref name="j"/>: a short panel repeats its last row.</summary>
    private static byte* PanelRow(in QuantizedMatrix w, int r0, int rows, int j) => w.Row(r0 + Math.Min(j, rows - 1));

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
    /// <see cref="Scale"/> over two row vectors × four tokens of integer sums (the first two only, for a tile of two
    /// <paramref name="tokens"/>): the rows' scales <paramref name="rows"/> (two vectors) times each token's scale at
    /// <paramref name="index"/> of its block scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleTile<TW, TB, TS, TI, TF>(
        float* destination, float* subtract, bool store, float* rows, float* s0, float* s1, float* s2, float* s3, int index,
        TI i00, TI i01, TI i02, TI i03, TI i10, TI i11, TI i12, TI i13, int tokens = TileTokens)
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
        if (tokens <= 2)
        {
            return;
        }

        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 2 * PanelRows, i02, d0, s2[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 2 * PanelRows + half, i12, d1, s2[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 3 * PanelRows, i03, d0, s3[index]);
        Scale<TW, TB, TS, TI, TF>(destination, subtract, store, 3 * PanelRows + half, i13, d1, s3[index]);
    }

    /// <summary>How <see cref="SmallPanel{TLoad, TQuants}"/> stores its signed quants.</summary>
    private interface ISmallQuants
    {
        /// <summary>
        /// Whether the quants are stored as unsigned q + 128, for a tile with an exact unsigned × signed byte dot
        /// product (vpdpbusd: one instruction, where signed bytes need the activations' signs fixed first); each
        /// block's integer sum then starts from the activations' −128·Σa to stay Σq·a exactly.
        /// </summary>
        static abstract bool Biased { get; }
    }

    private readonly struct SignedQuants : ISmallQuants
    {
        public static bool Biased => false;
    }

    private readonly struct BiasedQuants : ISmallQuants
    {
        public static bool Biased => true;
    }

    /// <summary>Q8_0, Q4_0 and Q5_0: signed quants, one float scale per row and 32-quant block.</summary>
    private readonly struct SmallPanel<TLoad, TQuants> : IPanelFormat
        where TLoad : struct, ISmallBlockLoad
        where TQuants : struct, ISmallQuants
    {
        public static bool ReadsKeptPanels => typeof(TLoad) == typeof(Q8_0Load) && TQuants.Biased == KeptBiased;

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel)
        {
            int blocks = w.Columns / GgmlTypes.LegacyBlock;
            for (int j = 0; j < PanelRows; j += 8)
            {
                byte* w0 = PanelRow(w, r0, rows, j), w1 = PanelRow(w, r0, rows, j + 1), w2 = PanelRow(w, r0, rows, j + 2), w3 = PanelRow(w, r0, rows, j + 3);
                byte* w4 = PanelRow(w, r0, rows, j + 4), w5 = PanelRow(w, r0, rows, j + 5), w6 = PanelRow(w, r0, rows, j + 6), w7 = PanelRow(w, r0, rows, j + 7);
                for (int b = 0; b < blocks; b++)
                {
                    // The eight rows' block scales converted at once: one at a time they took about a third of the pack (docs/benchmarks.md).
                    Half16.Read8(w0, w1, w2, w3, w4, w5, w6, w7, b * TLoad.BlockBytes).Store(panel.Scales + b * PanelRows + j);
                    PutLanes(
                        panel.Lane(8 * b, j),
                        Quants(w0, b), Quants(w1, b), Quants(w2, b), Quants(w3, b), Quants(w4, b), Quants(w5, b), Quants(w6, b), Quants(w7, b));
                }
            }
        }

        /// <summary>Block <paramref name="b"/>'s quants as the panel stores them.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<byte> Quants(byte* row, int b)
        {
            Vector256<byte> quants = TLoad.Load256(row, 32 * b);
            return TQuants.Biased ? quants ^ Vector256.Create((byte)0x80) : quants;
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void Tile<TW, TB, TS, TI, TF, TTokens>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct
            where TTokens : struct, ITokenCount
        {
            int half = TW.Count / 4;
            TokenGroup tokens = a.Group(t0, count);
            sbyte* x0 = tokens.Quants0, x1 = tokens.Quants1, x2 = tokens.Quants2, x3 = tokens.Quants3;
            float* s0 = tokens.Scales0, s1 = tokens.Scales1, s2 = tokens.Scales2, s3 = tokens.Scales3;
            int* o0 = tokens.Offsets0, o1 = tokens.Offsets1, o2 = tokens.Offsets2, o3 = tokens.Offsets3;
            bool fetch = panel.Kept && t0 == 0 && v == 0 && Sse.IsSupported;
            for (int b = 0; b < columns / GgmlTypes.LegacyBlock; b++)
            {
                if (fetch)
                {
                    // The first pass over a kept panel reads every other line of it from memory: both lines of each
                    // step of the block KeptAheadBlocks on are fetched now, for this pass and the next.
                    byte* ahead = (byte*)panel.Lane(8 * (b + KeptAheadBlocks), 0);
                    for (int line = 0; line < 8 * 4 * PanelRows / 64; line++)
                    {
                        Sse.Prefetch0(ahead + 64 * line);
                    }
                }

                TI i00 = default, i01 = default, i02 = default, i03 = default, i10 = default, i11 = default, i12 = default, i13 = default;
                if (TQuants.Biased)
                {
                    i00 = i10 = TW.BroadcastInt(o0 + b);
                    i01 = i11 = TW.BroadcastInt(o1 + b);
                    if (TTokens.Count > 2)
                    {
                        i02 = i12 = TW.BroadcastInt(o2 + b);
                        i03 = i13 = TW.BroadcastInt(o3 + b);
                    }
                }

                // Running pointers: the panel's address is not reloaded and recomputed every four columns.
                byte* p = (byte*)panel.Lane(8 * b, v);
                for (int c = 32 * b; c < 32 * b + 32; c += 4, p += 4 * PanelRows)
                {
                    TB w0 = TW.LoadBytes(p), w1 = TW.LoadBytes(p + 4 * half);
                    TB x = TW.BroadcastQuad(x0 + c);
                    i00 = Dot<TW, TB, TS, TI, TF>(i00, w0, x);
                    i10 = Dot<TW, TB, TS, TI, TF>(i10, w1, x);
                    x = TW.BroadcastQuad(x1 + c);
                    i01 = Dot<TW, TB, TS, TI, TF>(i01, w0, x);
                    i11 = Dot<TW, TB, TS, TI, TF>(i11, w1, x);
                    if (TTokens.Count > 2)
                    {
                        x = TW.BroadcastQuad(x2 + c);
                        i02 = Dot<TW, TB, TS, TI, TF>(i02, w0, x);
                        i12 = Dot<TW, TB, TS, TI, TF>(i12, w1, x);
                        x = TW.BroadcastQuad(x3 + c);
                        i03 = Dot<TW, TB, TS, TI, TF>(i03, w0, x);
                        i13 = Dot<TW, TB, TS, TI, TF>(i13, w1, x);
                    }
                }

                ScaleTile<TW, TB, TS, TI, TF>(
                    PartialSums(sums, b) + v, null, false, panel.Scales + b * PanelRows + v, s0, s1, s2, s3, b, i00, i01, i02, i03, i10, i11, i12, i13, TTokens.Count);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TI Dot<TW, TB, TS, TI, TF>(TI accumulator, TB weights, TB activations)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct =>
            TQuants.Biased ? TW.DotUnsigned(accumulator, weights, activations) : TW.DotSigned(accumulator, weights, activations);
    }

    /// <summary>
    /// Q2_K to Q6_K: unsigned quants whose integer group scales are applied in int32, scaled by d per super-block,
    /// less dmin times the min term Σ m·bsum from the activations' sums of 16. Q6_K's −32 and Q3_K's −4 offsets, written
    /// as mins (see ISuperBlockLoad), are packed with negated weights so that they land in the integer sum, where the
    /// reference has them.
    /// </summary>
    private readonly struct SuperPanel<TLoad> : IPanelFormat
        where TLoad : struct, ISuperBlockLoad
    {
        private static int Groups => GgmlTypes.SuperBlock >> TLoad.GroupShift;

        public static bool ReadsKeptPanels => false;

        /// <summary>
        /// Steps of four columns whose byte products a short holds exactly: each vpmaddubsw pair is at most
        /// 2 · MaxQuant · 127 (Q8_K quants stay within ±127), so 8 steps for Q4_K, 4 for Q5_K, 2 for Q6_K.
        /// </summary>
        private static int ShortSteps => Math.Min(GgmlTypes.SuperBlock / 4 / Groups, short.MaxValue / (2 * TLoad.MaxQuant * 127));

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void Pack(in QuantizedMatrix w, int r0, int rows, in Panel panel)
        {
            int superBlocks = w.Columns / GgmlTypes.SuperBlock;
            for (int j = 0; j < PanelRows; j += 8)
            {
                byte* w0 = PanelRow(w, r0, rows, j), w1 = PanelRow(w, r0, rows, j + 1), w2 = PanelRow(w, r0, rows, j + 2), w3 = PanelRow(w, r0, rows, j + 3);
                byte* w4 = PanelRow(w, r0, rows, j + 4), w5 = PanelRow(w, r0, rows, j + 5), w6 = PanelRow(w, r0, rows, j + 6), w7 = PanelRow(w, r0, rows, j + 7);
                for (int sb = 0; sb < superBlocks; sb++)
                {
                    int at = sb * TLoad.BlockBytes;

                    // The eight rows' d and dmin converted at once, as the Q8_0 pack does its scales.
                    Vector256<float> d = Half16.Read8(w0, w1, w2, w3, w4, w5, w6, w7, at + TLoad.DOffset);
                    d.Store(panel.Scales + sb * PanelRows + j);
                    (TLoad.DMinOffset == TLoad.DOffset ? d : Half16.Read8(w0, w1, w2, w3, w4, w5, w6, w7, at + TLoad.DMinOffset)).Store(panel.DMin + sb * PanelRows + j);

                    // Their group scales and min weights, transposed into the panel as the quants are.
                    Header(w0 + at, out Vector256<byte> c0, out Vector256<byte> h0, out Vector256<byte> m0);
                    Header(w1 + at, out Vector256<byte> c1, out Vector256<byte> h1, out Vector256<byte> m1);
                    Header(w2 + at, out Vector256<byte> c2, out Vector256<byte> h2, out Vector256<byte> m2);
                    Header(w3 + at, out Vector256<byte> c3, out Vector256<byte> h3, out Vector256<byte> m3);
                    Header(w4 + at, out Vector256<byte> c4, out Vector256<byte> h4, out Vector256<byte> m4);
                    Header(w5 + at, out Vector256<byte> c5, out Vector256<byte> h5, out Vector256<byte> m5);
                    Header(w6 + at, out Vector256<byte> c6, out Vector256<byte> h6, out Vector256<byte> m6);
                    Header(w7 + at, out Vector256<byte> c7, out Vector256<byte> h7, out Vector256<byte> m7);
                    int* scales = panel.GroupScales + sb * Groups * PanelRows + j;
                    PutLanes(scales, c0, c1, c2, c3, c4, c5, c6, c7);
                    if (Groups > 8)
                    {
                        PutLanes(scales + 8 * PanelRows, h0, h1, h2, h3, h4, h5, h6, h7);
                    }

                    PutLanes(panel.MinWeights + sb * 8 * PanelRows + j, m0, m1, m2, m3, m4, m5, m6, m7);
                    for (int value = 0; value < GgmlTypes.SuperBlock; value += 32)
                    {
                        PutLanes(
                            panel.Lane((sb * GgmlTypes.SuperBlock + value) / 4, j),
                            TLoad.Load256(w0 + at, value), TLoad.Load256(w1 + at, value), TLoad.Load256(w2 + at, value), TLoad.Load256(w3 + at, value),
                            TLoad.Load256(w4 + at, value), TLoad.Load256(w5 + at, value), TLoad.Load256(w6 + at, value), TLoad.Load256(w7 + at, value));
                    }
                }
            }
        }

        /// <summary>
        /// A row's super-block header as lanes for <see cref="PutLanes"/>: the group scales 0–7 and 8–15, each in both
        /// halves of its int, and the min weights, two to an int (negated where the offset is a min, which the tile subtracts).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Header(byte* block, out Vector256<byte> scalesLow, out Vector256<byte> scalesHigh, out Vector256<byte> minWeights)
        {
            TLoad.GroupScales(block, out Vector256<short> scales, out Vector256<short> weights);
            scalesLow = Paired(scales.GetLower());
            scalesHigh = Groups > 8 ? Paired(scales.GetUpper()) : default;
            minWeights = (TLoad.OffsetIsMin ? -weights : weights).AsByte();
        }

        /// <summary>Eight shorts, each in both 16-bit halves of an int.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<byte> Paired(Vector128<short> values)
        {
            Vector256<int> wide = Vector256.WidenLower(values.ToVector256Unsafe());
            return ((wide & Vector256.Create(0xFFFF)) | (wide << 16)).AsByte();
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public static void Tile<TW, TB, TS, TI, TF, TTokens>(in Panel panel, int columns, in QuantizedActivations a, int t0, int count, int v, float* sums, float* minTerms)
            where TW : struct, IInt8Tile<TB, TS, TI, TF>
            where TB : struct
            where TS : struct
            where TI : struct
            where TF : struct
            where TTokens : struct, ITokenCount
        {
            // Read once: calls inside the loops would spill every accumulator (this method exhausts the JIT's inlining budget).
            int half = TW.Count / 4, groups = Groups, stepsPerGroup = GgmlTypes.SuperBlock / 4 / groups, shortSteps = ShortSteps;
            TokenGroup tokens = a.Group(t0, count);
            sbyte* x0 = tokens.Quants0, x1 = tokens.Quants1, x2 = tokens.Quants2, x3 = tokens.Quants3;
            float* s0 = tokens.Scales0, s1 = tokens.Scales1, s2 = tokens.Scales2, s3 = tokens.Scales3;
            short* m0 = tokens.Sums0, m1 = tokens.Sums1, m2 = tokens.Sums2, m3 = tokens.Sums3;
            for (int sb = 0; sb < columns / GgmlTypes.SuperBlock; sb++)
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

                int step = sb * GgmlTypes.SuperBlock / 4;
                for (int g = 0; g < groups; g++)
                {
                    int* scales = panel.GroupScales + (sb * groups + g) * PanelRows + v;
                    TS c0 = TW.LoadPairs(scales), c1 = TW.LoadPairs(scales + half);
                    for (int chunk = 0; chunk < stepsPerGroup; chunk += shortSteps)
                    {
                        // The byte products summed in shorts over as many steps as cannot overflow, then scaled once.
                        TS p00 = default, p01 = default, p02 = default, p03 = default, p10 = default, p11 = default, p12 = default, p13 = default;
                        byte* p = (byte*)panel.Lane(step, v);
                        for (int c = 4 * step, end = c + 4 * shortSteps; c < end; c += 4, p += 4 * PanelRows)
                        {
                            TB w0 = TW.LoadBytes(p), w1 = TW.LoadBytes(p + 4 * half);
                            TB x = TW.BroadcastQuad(x0 + c);
                            p00 = TW.AddShorts(p00, TW.MultiplyBytes(w0, x));
                            p10 = TW.AddShorts(p10, TW.MultiplyBytes(w1, x));
                            x = TW.BroadcastQuad(x1 + c);
                            p01 = TW.AddShorts(p01, TW.MultiplyBytes(w0, x));
                            p11 = TW.AddShorts(p11, TW.MultiplyBytes(w1, x));
                            x = TW.BroadcastQuad(x2 + c);
                            p02 = TW.AddShorts(p02, TW.MultiplyBytes(w0, x));
                            p12 = TW.AddShorts(p12, TW.MultiplyBytes(w1, x));
                            x = TW.BroadcastQuad(x3 + c);
                            p03 = TW.AddShorts(p03, TW.MultiplyBytes(w0, x));
                            p13 = TW.AddShorts(p13, TW.MultiplyBytes(w1, x));
                        }

                        step += shortSteps;

                        i00 = TW.MultiplyAddPairs(i00, p00, c0);
                        i10 = TW.MultiplyAddPairs(i10, p10, c1);
                        i01 = TW.MultiplyAddPairs(i01, p01, c0);
                        i11 = TW.MultiplyAddPairs(i11, p11, c1);
                        i02 = TW.MultiplyAddPairs(i02, p02, c0);
                        i12 = TW.MultiplyAddPairs(i12, p12, c1);
                        i03 = TW.MultiplyAddPairs(i03, p03, c0);
                        i13 = TW.MultiplyAddPairs(i13, p13, c1);
                    }
                }

                float* subtract = TLoad.OffsetIsMin ? null : minTerms + v;
                ScaleTile<TW, TB, TS, TI, TF>(PartialSums(sums, sb) + v, subtract, false, panel.Scales + sb * PanelRows + v, s0, s1, s2, s3, sb, i00, i01, i02, i03, i10, i11, i12, i13);
            }
        }
    }
}
