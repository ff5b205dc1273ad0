using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Kernels;

// Matrix-vector products for one or a few tokens: memory-bound, so the point is to stream each weight row once at
// full bandwidth. For one token each thread reads its rows one after another as a single sequential stream: on the 1.7B shapes that
// runs as fast as a plain sum over the same bytes, while interleaving two or four row streams (to share the x loads)
// was 15–55% slower at 2 threads, the prefetchers losing track of several streams that each cross a page every row.
// A row is summed the same way wherever it falls, so results do not depend on the thread split.
// BF16 weights are widened a pair per 32-bit lane (Bf16.LoadPair512): one operation per vector instead of a shuffle and
// a shift, which is what the FMAs of several tokens compete with for the same ports. The even columns come out in one
// vector and the odd in the other, so x is first copied into that order (the decode layout, ArrangeInput).
// A batch of decoding sequences (2–4 tokens) reads each weight once for all of them, 16 rows at a time in 2048-column
// blocks, so the blocks of x (32 KiB for four tokens) are read from L1 by all 16 rows: four tokens' whole x at 6144
// columns is 96 KiB, past L1. Each row and token keeps the one-token kernel's chains across the blocks, so a
// sequence's results are bit-identical whatever it is batched with. With AVX-512 a row sums in two chains (the even and
// the odd columns), so two rows of up to four tokens sweep a block together in 16 accumulators, each x vector loaded
// once for both rows: 10–15% faster at four tokens on Zen 5 than one row in four chains (docs/benchmarks.md). With
// AVX2's 16 registers a row keeps four chains, and three or four tokens sweep a block twice, two chains at a time (each
// sweep feeds two chains from every other pair of weight vectors; docs/benchmarks.md, "Batched decode kernel").
internal static unsafe partial class MatMul
{
    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> touches pages: two 4 KiB pages.</summary>
    private const int PageLeadBytes = 8192;

    /// <summary>
    /// How far ahead of its reads a decode kernel that prefetches a step at a time, between its multiply-adds, does so
    /// (the one-token and batched BF16 kernels, the quantized ones): on Intel 4 KiB was faster than 2 KiB for each
    /// (BF16 four streams 21.5 against 20.5 t/s, a Q4_K matrix on one thread 27.2 against 28.6 ms, docs/benchmarks.md).
    /// </summary>
    internal const int StepLeadBytes = 4096;

    /// <summary>How far ahead of the row being read <see cref="PrefetchAhead"/> prefetches lines where it does.</summary>
    private const int LineLeadBytes = 2048;

    /// <summary>
    /// Columns per block of the batched kernel: four tokens' x of one block is 32 KiB, held in the 48 KiB L1 of Zen 5 and
    /// Sapphire Rapids. There it read the weights faster than blocks of 512 columns (a quarter of the carrying of chains
    /// between blocks, and each token's x 8 KiB from the next) and than blocks of 1024, which were level for four tokens
    /// and slower for two and three; on Zen 4's 32 KiB L1, 1024 was faster for four tokens only (docs/benchmarks.md).
    /// </summary>
    internal const int BatchColumns = 2048;

    /// <summary>
    /// How far ahead of their reads the batched kernel's row pairs prefetch, a step at a time: two streams, each
    /// <see cref="StepLeadBytes"/> ahead (on Zen 5 against 12 and 16 KiB, and 8 and 16 KiB into L2, docs/benchmarks.md).
    /// </summary>
    private const int PairLeadBytes = 2 * StepLeadBytes;

    /// <summary>Rows the batched kernel sweeps together, block by block, each reading the same blocks of x.</summary>
    internal const int BatchRows = 16;

    /// <summary>
    /// Whether <see cref="PrefetchAhead"/>, for the kernels that prefetch a row ahead rather than between their
    /// multiply-adds, prefetches every cache line (Intel) or touches each page (others): the better of the two differs
    /// by CPU family in both directions (docs/benchmarks.md, "Decode prefetch").
    /// </summary>
    internal static readonly bool PrefetchLines = CpuIdentity.IsIntel;

    /// <summary>
    /// Whether the one-token BF16/F32 decode kernel's step-wise prefetch goes to L2 (<c>prefetcht1</c>, Intel) rather
    /// than to L1: on the Intel Xeon it read BF16 weights faster, on AMD Zen 4 and Zen 5 <c>prefetcht0</c> was ahead
    /// (docs/benchmarks.md).
    /// </summary>
    private static readonly bool StepPrefetchToL2 = CpuIdentity.IsIntel;

    /// <summary>
    /// Whether the batched kernels' step-wise prefetch goes to L2: on Intel, as for one token, and where the L1 data
    /// cache is under 48 KiB (AMD Zen 4), because there lines prefetched into L1 evict the block of x that every row of
    /// the group rereads; Zen 5's 48 KiB L1 was faster with <c>prefetcht0</c> (docs/benchmarks.md).
    /// </summary>
    private static readonly bool BatchedStepPrefetchToL2 = CpuIdentity.IsIntel || CpuIdentity.L1DataKiB is > 0 and < 48;

    /// <summary>F16 rows widened to float32 on this thread (.NET exposes no vcvtph2ps); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_widened;

    /// <summary>The batched kernel's chains between column blocks (pinned, used from a cache line on); allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_carried;

    /// <summary>x in the decode layout for BF16 rows, written by the thread that starts a product; allocated once per thread.</summary>
    [ThreadStatic]
    private static float[]? t_arrangedBf16;

    /// <summary>x in the decode layout for F32 and F16 rows, as <see cref="t_arrangedBf16"/>.</summary>
    [ThreadStatic]
    private static float[]? t_arrangedPlain;

    /// <summary>
    /// Rows [rowStart, rowEnd) of y = W·x for one or more tokens (the engine sends up to <see cref="DecodeMaxTokens"/>,
    /// in passes of four); <paramref name="arranged"/>
    /// is x in the decode layout for W's type (<see cref="ArrangeInput"/>), <paramref name="x"/> as given, whose
    /// columns past the last whole group of four vectors the kernels read.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MatVecRows(in WeightMatrix w, float* x, float* arranged, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        if (tokens > 1)
        {
            BatchedRows(w, x, arranged, y, tokens, rowStart, rowEnd, path);
            return;
        }

        int columns = w.Columns;
        float[]? widened = w.Type == TensorDType.F16 ? Widened(columns) : null;
        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);

            // The lines StepLeadBytes ahead are prefetched a step at a time inside Dot, between its multiply-adds, rather
            // than a row's lines at once before it, which stalls when the line fill buffers are full (Intel), or than the
            // page touches of PrefetchAhead (6-9% slower on AMD Zen 5, docs/benchmarks.md).
            bool interleaved = Sse.IsSupported && w.Type != TensorDType.F16;
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.Row(r);
                if (!interleaved)
                {
                    PrefetchAhead(row, w.RowStride, end);
                }

                TensorDType type = w.Type;
                if (type == TensorDType.F16)
                {
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(row, columns), new Span<float>(pWidened, columns));
                    row = (byte*)pWidened;
                    type = TensorDType.F32;
                }

                y[r] = Dot(type, row, x, arranged, columns, path, interleaved ? row + StepLeadBytes : null);
            }
        }
    }

    /// <summary>Floats of the decode layout of <paramref name="tokens"/> tokens of <paramref name="columns"/> columns.</summary>
    private static long ArrangedLength(int tokens, int columns) =>
        (long)tokens * ((columns + BatchColumns - 1) / BatchColumns) * BatchColumns;

    /// <summary>
    /// Copies columns [0, m) of every token's x (m: the last multiple of four vectors of <paramref name="path"/>'s
    /// width) into the layout the decode kernels read: block by block of <see cref="BatchColumns"/> columns, each
    /// token's part of a block <see cref="BatchColumns"/> floats after the previous token's, so the batched kernel
    /// reaches every token from one pointer with constant offsets; within each group of two vectors the even columns
    /// then the odd ones when <paramref name="interleaved"/>, as <see cref="Bf16.LoadPair512"/> pairs the weights.
    /// </summary>
    private static void ArrangeInto(float* x, int tokens, int columns, KernelPath path, bool interleaved, float* arranged)
    {
        int count = path switch { KernelPath.Avx512 => 16, KernelPath.Avx2 => 8, _ => 4 };
        int mainEnd = columns - columns % (4 * count);
        for (int from = 0; from < mainEnd; from += BatchColumns)
        {
            int length = Math.Min(BatchColumns, mainEnd - from);
            for (int t = 0; t < tokens; t++)
            {
                float* source = x + (long)t * columns + from;
                float* target = arranged + (long)from * tokens + t * BatchColumns;
                if (!interleaved)
                {
                    new ReadOnlySpan<float>(source, length).CopyTo(new Span<float>(target, length));
                    continue;
                }

                for (int g = 0; g < length; g += 2 * count)
                {
                    for (int j = 0; j < count; j++)
                    {
                        target[g + j] = source[g + 2 * j];
                        target[g + count + j] = source[g + 2 * j + 1];
                    }
                }
            }
        }
    }

    /// <summary>
    /// x in the decode layout for BF16 rows if <paramref name="bf16"/> and for the other plain types if
    /// <paramref name="plain"/>, in this thread's scratch (null where not asked for): read by the pool's threads while
    /// this thread waits for the product, so it must not start another before that one ends.
    /// </summary>
    private static void ArrangeInput(float* x, int tokens, int columns, KernelPath path, bool bf16, bool plain, out float* arrangedBf16, out float* arrangedPlain)
    {
        long length = ArrangedLength(tokens, columns);
        arrangedBf16 = bf16 ? AlignedScratch(ref t_arrangedBf16, length) : null;
        arrangedPlain = plain ? AlignedScratch(ref t_arrangedPlain, length) : null;
        if (bf16)
        {
            ArrangeInto(x, tokens, columns, path, interleaved: true, arrangedBf16);
        }

        if (plain)
        {
            ArrangeInto(x, tokens, columns, path, interleaved: false, arrangedPlain);
        }
    }

    /// <summary>
    /// <paramref name="floats"/> floats of <paramref name="scratch"/> from its first cache line on, the array (pinned, so
    /// the pointer stays valid) grown first if it is too short.
    /// </summary>
    private static float* AlignedScratch(ref float[]? scratch, long floats)
    {
        if (scratch is null || scratch.Length < floats + 16)
        {
            scratch = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        }

        return (float*)(((nint)Unsafe.AsPointer(ref scratch[0]) + 63) & ~(nint)63);
    }

    /// <summary>
    /// A row block in the batched kernel's reading order (a group's rows, then its next column block, then the next
    /// group), stepped once per block read, so the block a fixed distance ahead comes without a search.
    /// </summary>
    internal struct BlockCursor(int rowStart, int rowEnd)
    {
        private int _start = rowStart, _size = Math.Min(BatchRows, rowEnd - rowStart), _block, _offset;

        /// <summary>Moves to the next block read; past <paramref name="rowEnd"/> the cursor stays where it is.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Advance(int rowEnd, int blocks)
        {
            if (_size <= 0 || ++_offset < _size)
            {
                return;
            }

            _offset = 0;
            if (++_block < blocks)
            {
                return;
            }

            _block = 0;
            _start += _size;
            _size = Math.Min(BatchRows, rowEnd - _start);
        }

        /// <summary>The block's first weight and its length in bytes; null past the last row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly byte* Block(in WeightMatrix w, int blocks, out long length)
        {
            if (_size <= 0)
            {
                length = 0;
                return null;
            }

            int from = _block * BatchColumns;
            int to = _block == blocks - 1 ? w.Columns : from + BatchColumns;
            length = (long)(to - from) * w.ElementSize;
            return w.Row(_start + _offset) + (long)from * w.ElementSize;
        }
    }

    private static float[] Widened(int length)
    {
        float[]? widened = t_widened;
        if (widened is null || widened.Length < length)
        {
            widened = t_widened = new float[length];
        }

        return widened;
    }

    private static void BatchedRows(in WeightMatrix w, float* x, float* arranged, float* y, int tokens, int rowStart, int rowEnd, KernelPath path)
    {
        bool bf16 = w.Type == TensorDType.BF16;
        switch (path)
        {
            case KernelPath.Avx512 when bf16: Batched<Width512, Vector512<float>, Bf16>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx512: Batched<Width512, Vector512<float>, F32>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx2 when bf16: Batched<Width256, Vector256<float>, Bf16>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Avx2: Batched<Width256, Vector256<float>, F32>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Portable when bf16: Batched<Width128, Vector128<float>, Bf16>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            case KernelPath.Portable: Batched<Width128, Vector128<float>, F32>(w, x, arranged, y, tokens, rowStart, rowEnd); break;
            default: throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path");
        }
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) of y = W·x for two or more tokens: <see cref="BatchRows"/> rows at a time, each swept
    /// in blocks of <see cref="BatchColumns"/> columns, so a block of every token's x is read from L1 by all the rows
    /// of the group. Each row and token keeps the chains of <see cref="Dot{TWidth, TVector, TLoad}"/> (two with
    /// AVX-512, swept two rows at a time by <see cref="RowPairs"/>, four otherwise), carried in memory from one block
    /// to the next and finished as Dot finishes them (by <see cref="FinishFour"/>, or by the row pairs in registers on
    /// the last block, <see cref="FinishRow"/>), so every output is bit-identical to the one-token kernel's.
    /// F32 rows (and F16 rows widened to F32 a group at a time) go through <typeparamref name="TLoad"/> = <see cref="F32"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Batched<TWidth, TVector, TLoad>(in WeightMatrix w, float* x, float* arranged, float* y, int tokens, int rowStart, int rowEnd)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        int columns = w.Columns;
        int chainFloats = 4 * TWidth.Count;
        // Without AVX-512 (16 registers) two tokens' four chains fit, so each block is swept once, its lines read in
        // order, and three or four tokens sweep it twice, two chains at a time. More than four tokens go in passes of four.
        const int passTokens = 4;
        bool allChains = tokens <= 2;
        int mainEnd = columns - columns % chainFloats;
        int blocks = Math.Max(1, (mainEnd + BatchColumns - 1) / BatchColumns);
        // Row pairs finish their rows in registers (FinishRow) on the last block where no columns follow it, rather than
        // carry their chains through memory only to read them back (docs/benchmarks.md, 2026-12-07).
        bool finishInSweep = TwoChains<TWidth, TVector>() && mainEnd == columns;
        bool f16 = w.Type == TensorDType.F16;
        long rowStride = f16 ? (long)columns * sizeof(float) : w.RowStride;
        // Row blocks ahead to prefetch: StepLeadBytes, as the one-token kernel's lead, or PairLeadBytes for row pairs.
        // Row pairs in two passes prefetch a whole group ahead, over both passes (RowPairs).
        int lead = !TwoChains<TWidth, TVector>() ? Math.Max(1, StepLeadBytes / (BatchColumns * w.ElementSize))
            : TwoPasses(tokens) ? BatchRows
            : Math.Max(1, PairLeadBytes / (BatchColumns * w.ElementSize));
        // One row's worth more: a group's last row, when alone, is swept as a pair with itself into this scratch.
        float* carried = AlignedScratch(ref t_carried, (long)(BatchRows + 1) * tokens * chainFloats);
        float[]? widened = f16 ? Widened(BatchRows * columns) : null;
        var ahead = new BlockCursor(rowStart, rowEnd);
        for (int i = 0; i < lead; i++)
        {
            ahead.Advance(rowEnd, blocks);
        }

        fixed (float* pWidened = widened)
        {
            byte* end = w.Row(rowEnd);
            for (int g0 = rowStart; g0 < rowEnd; g0 += BatchRows)
            {
                int g1 = Math.Min(g0 + BatchRows, rowEnd);
                byte* rows = w.Row(g0);
                if (f16)
                {
                    for (int r = g0; r < g1; r++)
                    {
                        PrefetchAhead(w.Row(r), w.RowStride, end);
                        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w.Row(r), columns), new Span<float>(pWidened + (long)(r - g0) * columns, columns));
                    }

                    rows = (byte*)pWidened;
                }

                for (int b = 0; b < blocks; b++)
                {
                    int from = b * BatchColumns;
                    int to = Math.Min(mainEnd, from + BatchColumns);
                    // Token t's column i of this block is at xBlock + t · BatchColumns + i.
                    float* xBlock = arranged + (long)from * tokens - from;
                    if (TwoChains<TWidth, TVector>())
                    {
                        float* yGroup = finishInSweep && b == blocks - 1 ? y + g0 : null;
                        RowPairs<TWidth, TVector, TLoad>(w, rows, rowStride, g0, g1, xBlock, from, to, b == 0, tokens, carried, f16 ? null : &ahead, blocks, rowEnd, yGroup);
                        continue;
                    }

                    for (int r = g0; r < g1; r++)
                    {
                        byte* row = rows + (r - g0) * rowStride;
                        // The first sweep prefetches the block ahead a step at a time, as far as its own block reaches
                        // (AheadBlock prefetches the rest of a longer last block). On AMD too: with page touches
                        // instead, the sweeps waited on their weight loads (docs/benchmarks.md).
                        byte* sweepAhead = f16 || !Sse.IsSupported ? null : AheadBlock(w, &ahead, blocks, rowEnd, (long)(to - from) * TLoad.ElementBytes);

                        for (int t = 0; t < tokens; t += passTokens)
                        {
                            float* chains = carried + ((long)(r - g0) * tokens + t) * chainFloats;
                            float* xt = xBlock + (long)t * BatchColumns;
                            int passCount = Math.Min(passTokens, tokens - t);
                            if (allChains)
                            {
                                Sweep<TWidth, TVector, TLoad>(passCount, allChains, row, xt, from, to, b == 0, chains, sweepAhead);
                                sweepAhead = null;
                                continue;
                            }

                            for (int pair = 0; pair < chainFloats; pair += 2 * TWidth.Count)
                            {
                                Sweep<TWidth, TVector, TLoad>(passCount, allChains, row, xt, from + pair, to, b == 0, chains + pair, sweepAhead);
                                sweepAhead = null;
                            }
                        }
                    }
                }

                for (int r = g0; r < g1 && !finishInSweep; r++)
                {
                    byte* row = rows + (r - g0) * rowStride;
                    for (int t = 0; t < tokens; t += 4)
                    {
                        FinishFour<TWidth, TVector, TLoad>(row, x + (long)t * columns, carried + ((long)(r - g0) * tokens + t) * chainFloats, Math.Min(4, tokens - t), mainEnd, columns, y + (long)t * w.Rows + r, w.Rows);
                    }
                }
            }
        }
    }

    /// <summary>
    /// One column block [<paramref name="from"/>, <paramref name="to"/>) of rows [<paramref name="g0"/>, <paramref name="g1"/>)
    /// two rows at a time (<see cref="TwoChains{TWidth, TVector}"/>), in passes of up to four tokens, each over every pair
    /// of the group: a pass's x (32 KiB) stays in L1 and the next pass rereads the weights from L2, where passes inside
    /// each pair made eight tokens' x (64 KiB) leave L1 at every pair. Each pair's first pass prefetches the two blocks
    /// <paramref name="ahead"/> (null: none) gives next, or in <see cref="TwoPasses"/> each sweep of either pass one.
    /// With <paramref name="yGroup"/> (y at row <paramref name="g0"/>; the last block, no columns after it) the sweeps
    /// write the rows' outputs rather than carry their chains.
    /// </summary>
    private static void RowPairs<TWidth, TVector, TLoad>(
        in WeightMatrix w, byte* rows, long rowStride, int g0, int g1, float* xBlock, int from, int to, bool first, int tokens,
        float* carried, BlockCursor* ahead, int blocks, int rowEnd, float* yGroup)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        int chainFloats = 4 * TWidth.Count;
        for (int t = 0; t < tokens; t += 4)
        {
            float* xt = xBlock + (long)t * BatchColumns;
            for (int r = g0; r < g1; r += 2)
            {
                bool pair = r + 1 < g1;
                byte* rowA = rows + (r - g0) * rowStride;
                byte* rowB = pair ? rowA + rowStride : rowA;
                byte* aheadA = null, aheadB = null;
                long swept = (long)(to - from) * TLoad.ElementBytes;
                if (ahead != null && Sse.IsSupported && (t == 0 || (TwoPasses(tokens) && pair)))
                {
                    // In two passes one row block per sweep, so the memory reads go on while the second pass rereads from L2.
                    aheadA = AheadBlock(w, ahead, blocks, rowEnd, swept);
                    aheadB = pair && !TwoPasses(tokens) ? AheadBlock(w, ahead, blocks, rowEnd, swept) : null;
                }

                float* chainsA = carried + ((long)(r - g0) * tokens + t) * chainFloats;
                // A lone last row's twin goes to the scratch row past the group's.
                float* chainsB = pair ? chainsA + (long)tokens * chainFloats : carried + ((long)BatchRows * tokens + t) * chainFloats;
                float* yA = yGroup == null ? null : yGroup + (long)t * w.Rows + (r - g0);
                float* yB = yA != null && pair ? yA + 1 : null;
                switch (Math.Min(4, tokens - t))
                {
                    case 1: SweepPair<TWidth, TVector, TLoad, OneToken>(rowA, rowB, xt, from, to, first, chainsA, chainsB, aheadA, aheadB, yA, yB, w.Rows); break;
                    case 2: SweepPair<TWidth, TVector, TLoad, TwoTokens>(rowA, rowB, xt, from, to, first, chainsA, chainsB, aheadA, aheadB, yA, yB, w.Rows); break;
                    case 3: SweepPair<TWidth, TVector, TLoad, ThreeTokens>(rowA, rowB, xt, from, to, first, chainsA, chainsB, aheadA, aheadB, yA, yB, w.Rows); break;
                    default: SweepPair<TWidth, TVector, TLoad, FourTokens>(rowA, rowB, xt, from, to, first, chainsA, chainsB, aheadA, aheadB, yA, yB, w.Rows); break;
                }
            }
        }
    }

    /// <summary>
    /// Whether the row pairs sweep each group in two passes (five to eight tokens: decode steps on the AVX-512 path, see
    /// <see cref="DecodeMaxTokens"/>). Their prefetch then runs a whole group (<see cref="BatchRows"/> row blocks) ahead,
    /// one row block per sweep of either pass: with both rows' blocks prefetched in the first pass only, memory sat idle
    /// while the second pass reread the group from L2 (docs/benchmarks.md, 2026-12-07).
    /// </summary>
    private static bool TwoPasses(int tokens) => tokens is > 4 and <= 8;

    /// <summary>
    /// The block <paramref name="ahead"/> is at, moved on one: what a sweep of <paramref name="swept"/> bytes prefetches
    /// a step at a time, the rest of it (a longer last block) prefetched here; null past the last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* AheadBlock(in WeightMatrix w, BlockCursor* ahead, int blocks, int rowEnd, long swept)
    {
        byte* block = ahead->Block(w, blocks, out long length);
        ahead->Advance(rowEnd, blocks);
        if (block != null && length > swept)
        {
            PrefetchRange(block + swept, block + length);
        }

        return block;
    }

    /// <summary>
    /// Two rows' products over columns [<paramref name="from"/>, <paramref name="to"/>) for one to four tokens, in the
    /// two chains of <see cref="TwoChains{TWidth, TVector}"/> per row and token, carried in memory between blocks as
    /// <see cref="Sweep{TWidth, TVector, TLoad, TTokens, TPairs}"/> carries its four (the last two left +0). Each x
    /// vector is loaded once for both rows. The blocks <see cref="PairLeadBytes"/> ahead are prefetched a step at a time
    /// from <paramref name="aheadA"/> and <paramref name="aheadB"/>. With <paramref name="yA"/> (and <paramref name="yB"/>
    /// unless row B is row A's twin) the rows' outputs are written there, token t's <paramref name="yStride"/> · t on, as
    /// <see cref="FinishFour"/> writes them.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SweepPair<TWidth, TVector, TLoad, TTokens>(byte* rowA, byte* rowB, float* x, int from, int to, bool first, float* carriedA, float* carriedB, byte* aheadA, byte* aheadB, float* yA, float* yB, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
        where TTokens : struct, ITokenCount
    {
        const int c = 4; // floats per token's chains, in vectors
        TVector e0 = default, o0 = default, e1 = default, o1 = default, e2 = default, o2 = default, e3 = default, o3 = default;
        TVector f0 = default, p0 = default, f1 = default, p1 = default, f2 = default, p2 = default, f3 = default, p3 = default;
        if (!first)
        {
            Load2<TWidth, TVector>(carriedA, out e0, out o0);
            Load2<TWidth, TVector>(carriedB, out f0, out p0);
            if (TTokens.Count > 1)
            {
                Load2<TWidth, TVector>(carriedA + c * TWidth.Count, out e1, out o1);
                Load2<TWidth, TVector>(carriedB + c * TWidth.Count, out f1, out p1);
            }

            if (TTokens.Count > 2)
            {
                Load2<TWidth, TVector>(carriedA + 2 * c * TWidth.Count, out e2, out o2);
                Load2<TWidth, TVector>(carriedB + 2 * c * TWidth.Count, out f2, out p2);
            }

            if (TTokens.Count > 3)
            {
                Load2<TWidth, TVector>(carriedA + 3 * c * TWidth.Count, out e3, out o3);
                Load2<TWidth, TVector>(carriedB + 3 * c * TWidth.Count, out f3, out p3);
            }
        }

        TVector high = TWidth.HighHalves;
        for (nint i = from; i < to; i += 4 * TWidth.Count)
        {
            if (aheadA != null)
            {
                PrefetchStep<TWidth, TVector, TLoad>(aheadA, BatchedStepPrefetchToL2);
                aheadA += 4 * TWidth.Count * TLoad.ElementBytes;
            }

            if (aheadB != null)
            {
                PrefetchStep<TWidth, TVector, TLoad>(aheadB, BatchedStepPrefetchToL2);
                aheadB += 4 * TWidth.Count * TLoad.ElementBytes;
            }

            TWidth.LoadWeightPair<TLoad>(rowA, i, high, out TVector a0, out TVector a1);
            TWidth.LoadWeightPair<TLoad>(rowA, i + 2 * TWidth.Count, high, out TVector a2, out TVector a3);
            TWidth.LoadWeightPair<TLoad>(rowB, i, high, out TVector b0, out TVector b1);
            TWidth.LoadWeightPair<TLoad>(rowB, i + 2 * TWidth.Count, high, out TVector b2, out TVector b3);
            Step<TWidth, TVector>(x + i, a0, a1, a2, a3, b0, b1, b2, b3, ref e0, ref o0, ref f0, ref p0);
            if (TTokens.Count > 1)
            {
                Step<TWidth, TVector>(x + BatchColumns + i, a0, a1, a2, a3, b0, b1, b2, b3, ref e1, ref o1, ref f1, ref p1);
            }

            if (TTokens.Count > 2)
            {
                Step<TWidth, TVector>(x + 2 * BatchColumns + i, a0, a1, a2, a3, b0, b1, b2, b3, ref e2, ref o2, ref f2, ref p2);
            }

            if (TTokens.Count > 3)
            {
                Step<TWidth, TVector>(x + 3 * BatchColumns + i, a0, a1, a2, a3, b0, b1, b2, b3, ref e3, ref o3, ref f3, ref p3);
            }
        }

        if (yA != null)
        {
            FinishRow<TWidth, TVector, TTokens>(yA, yStride, e0, o0, e1, o1, e2, o2, e3, o3);
            if (yB != null)
            {
                FinishRow<TWidth, TVector, TTokens>(yB, yStride, f0, p0, f1, p1, f2, p2, f3, p3);
            }

            return;
        }

        StorePair<TWidth, TVector>(carriedA, carriedB, first, e0, o0, f0, p0);
        if (TTokens.Count > 1)
        {
            StorePair<TWidth, TVector>(carriedA + c * TWidth.Count, carriedB + c * TWidth.Count, first, e1, o1, f1, p1);
        }

        if (TTokens.Count > 2)
        {
            StorePair<TWidth, TVector>(carriedA + 2 * c * TWidth.Count, carriedB + 2 * c * TWidth.Count, first, e2, o2, f2, p2);
        }

        if (TTokens.Count > 3)
        {
            StorePair<TWidth, TVector>(carriedA + 3 * c * TWidth.Count, carriedB + 3 * c * TWidth.Count, first, e3, o3, f3, p3);
        }
    }

    /// <summary>One token's step of <see cref="SweepPair{TWidth, TVector, TLoad, TTokens}"/>: four x vectors, each for both rows, in Dot's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TWidth, TVector>(
        float* x, TVector a0, TVector a1, TVector a2, TVector a3, TVector b0, TVector b1, TVector b2, TVector b3,
        ref TVector e, ref TVector o, ref TVector f, ref TVector p)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        TVector x0 = TWidth.Load(x), x1 = TWidth.Load(x + TWidth.Count);
        e = TWidth.MultiplyAdd(a0, x0, e);
        o = TWidth.MultiplyAdd(a1, x1, o);
        f = TWidth.MultiplyAdd(b0, x0, f);
        p = TWidth.MultiplyAdd(b1, x1, p);
        TVector x2 = TWidth.Load(x + 2 * TWidth.Count), x3 = TWidth.Load(x + 3 * TWidth.Count);
        e = TWidth.MultiplyAdd(a2, x2, e);
        o = TWidth.MultiplyAdd(a3, x3, o);
        f = TWidth.MultiplyAdd(b2, x2, f);
        p = TWidth.MultiplyAdd(b3, x3, p);
    }

    /// <summary>
    /// One row's outputs from its two chains per token, in <see cref="FinishFour"/>'s operations on what it would read
    /// back (the unused chains +0, no columns after the block, a tail of +0), so they are bit-identical to its.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishRow<TWidth, TVector, TTokens>(float* y, long yStride, TVector e0, TVector o0, TVector e1, TVector o1, TVector e2, TVector o2, TVector e3, TVector o3)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TTokens : struct, ITokenCount
    {
        TVector zero = default;
        TVector unused = TWidth.Add(zero, zero);
        Vector128<float> sums = TWidth.Sum4(
            TWidth.Add(TWidth.Add(e0, o0), unused),
            TTokens.Count > 1 ? TWidth.Add(TWidth.Add(e1, o1), unused) : zero,
            TTokens.Count > 2 ? TWidth.Add(TWidth.Add(e2, o2), unused) : zero,
            TTokens.Count > 3 ? TWidth.Add(TWidth.Add(e3, o3), unused) : zero);
        for (int t = 0; t < TTokens.Count; t++)
        {
            y[t * yStride] = sums.GetElement(t) + 0f;
        }
    }

    /// <summary>Both rows' two chains back to memory; on the first block also the +0 of the two chains they do not use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair<TWidth, TVector>(float* carriedA, float* carriedB, bool first, TVector e, TVector o, TVector f, TVector p)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        Store2<TWidth, TVector>(carriedA, e, o);
        Store2<TWidth, TVector>(carriedB, f, p);
        if (first)
        {
            Store2<TWidth, TVector>(carriedA + 2 * TWidth.Count, default, default);
            Store2<TWidth, TVector>(carriedB + 2 * TWidth.Count, default, default);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sweep<TWidth, TVector, TLoad>(int tokens, bool allChains, byte* row, float* x, int from, int to, bool first, float* carried, byte* ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        if (allChains)
        {
            switch (tokens)
            {
                case 1: Sweep<TWidth, TVector, TLoad, OneToken, TwoTokens>(row, x, from, to, first, carried, ahead); break;
                default: Sweep<TWidth, TVector, TLoad, TwoTokens, TwoTokens>(row, x, from, to, first, carried, ahead); break;
            }

            return;
        }

        switch (tokens)
        {
            case 1: Sweep<TWidth, TVector, TLoad, OneToken, OneToken>(row, x, from, to, first, carried, ahead); break;
            case 2: Sweep<TWidth, TVector, TLoad, TwoTokens, OneToken>(row, x, from, to, first, carried, ahead); break;
            case 3: Sweep<TWidth, TVector, TLoad, ThreeTokens, OneToken>(row, x, from, to, first, carried, ahead); break;
            default: Sweep<TWidth, TVector, TLoad, FourTokens, OneToken>(row, x, from, to, first, carried, ahead); break;
        }
    }

    /// <summary>
    /// One row against one to four tokens over columns [from, to), stepping four vectors: at each step the pair of
    /// weight vectors at the step's start feeds two of Dot's chains per token (a and b when
    /// <paramref name="from"/> is at a group's start, c and d when it is two vectors in), and with two
    /// <typeparamref name="TPairs"/> (up to two tokens) the next pair feeds c and d too; token t's x at
    /// <paramref name="x"/> + t · <see cref="BatchColumns"/> in the decode layout. The chains start at zero if
    /// <paramref name="first"/>, else from <paramref name="carried"/> (token t's four chains 4 · Count floats after
    /// token t − 1's), and are left there. Each weight pair is loaded and widened once for all tokens. Unless
    /// <paramref name="ahead"/> is null, each step also prefetches a step's worth of the weights from there on, so the
    /// block read next but one arrives while this one is summed rather than after a burst of prefetches before it.
    /// </summary>
    /// <remarks>
    /// Written out per token: through a helper taking the x pointers, the JIT computed each offset address in an
    /// instruction of its own instead of folding it into the multiply-add's memory operand.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Sweep<TWidth, TVector, TLoad, TTokens, TPairs>(byte* row, float* x, int from, int to, bool first, float* carried, byte* ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
        where TTokens : struct, ITokenCount
        where TPairs : struct, ITokenCount
    {
        TVector e0 = default, o0 = default, e1 = default, o1 = default, e2 = default, o2 = default, e3 = default, o3 = default;
        TVector c0 = default, d0 = default, c1 = default, d1 = default, c2 = default, d2 = default, c3 = default, d3 = default;
        if (!first && TPairs.Count > 1)
        {
            Load2<TWidth, TVector>(carried + 2 * TWidth.Count, out c0, out d0);
            if (TTokens.Count > 1)
            {
                Load2<TWidth, TVector>(carried + 6 * TWidth.Count, out c1, out d1);
            }

            if (TTokens.Count > 2)
            {
                Load2<TWidth, TVector>(carried + 10 * TWidth.Count, out c2, out d2);
            }

            if (TTokens.Count > 3)
            {
                Load2<TWidth, TVector>(carried + 14 * TWidth.Count, out c3, out d3);
            }
        }

        if (!first)
        {
            Load2<TWidth, TVector>(carried, out e0, out o0);

            if (TTokens.Count > 1)
            {
                Load2<TWidth, TVector>(carried + 4 * TWidth.Count, out e1, out o1);
            }

            if (TTokens.Count > 2)
            {
                Load2<TWidth, TVector>(carried + 8 * TWidth.Count, out e2, out o2);
            }

            if (TTokens.Count > 3)
            {
                Load2<TWidth, TVector>(carried + 12 * TWidth.Count, out e3, out o3);
            }
        }

        TVector high = TWidth.HighHalves;
        for (nint i = from; i < to; i += 4 * TWidth.Count)
        {
            if (ahead != null)
            {
                PrefetchStep<TWidth, TVector, TLoad>(ahead, BatchedStepPrefetchToL2);
                ahead += 4 * TWidth.Count * TLoad.ElementBytes;
            }

            TWidth.LoadWeightPair<TLoad>(row, i, high, out TVector w0, out TVector w1);
            e0 = TWidth.MultiplyAdd(w0, TWidth.Load(x + i), e0);
            o0 = TWidth.MultiplyAdd(w1, TWidth.Load(x + i + TWidth.Count), o0);
            if (TTokens.Count > 1)
            {
                e1 = TWidth.MultiplyAdd(w0, TWidth.Load(x + BatchColumns + i), e1);
                o1 = TWidth.MultiplyAdd(w1, TWidth.Load(x + BatchColumns + i + TWidth.Count), o1);
            }

            if (TTokens.Count > 2)
            {
                e2 = TWidth.MultiplyAdd(w0, TWidth.Load(x + 2 * BatchColumns + i), e2);
                o2 = TWidth.MultiplyAdd(w1, TWidth.Load(x + 2 * BatchColumns + i + TWidth.Count), o2);
            }

            if (TTokens.Count > 3)
            {
                e3 = TWidth.MultiplyAdd(w0, TWidth.Load(x + 3 * BatchColumns + i), e3);
                o3 = TWidth.MultiplyAdd(w1, TWidth.Load(x + 3 * BatchColumns + i + TWidth.Count), o3);
            }

            if (TPairs.Count > 1)
            {
                TWidth.LoadWeightPair<TLoad>(row, i + 2 * TWidth.Count, high, out w0, out w1);
                c0 = TWidth.MultiplyAdd(w0, TWidth.Load(x + i + 2 * TWidth.Count), c0);
                d0 = TWidth.MultiplyAdd(w1, TWidth.Load(x + i + 3 * TWidth.Count), d0);
                if (TTokens.Count > 1)
                {
                    c1 = TWidth.MultiplyAdd(w0, TWidth.Load(x + BatchColumns + i + 2 * TWidth.Count), c1);
                    d1 = TWidth.MultiplyAdd(w1, TWidth.Load(x + BatchColumns + i + 3 * TWidth.Count), d1);
                }

                if (TTokens.Count > 2)
                {
                    c2 = TWidth.MultiplyAdd(w0, TWidth.Load(x + 2 * BatchColumns + i + 2 * TWidth.Count), c2);
                    d2 = TWidth.MultiplyAdd(w1, TWidth.Load(x + 2 * BatchColumns + i + 3 * TWidth.Count), d2);
                }

                if (TTokens.Count > 3)
                {
                    c3 = TWidth.MultiplyAdd(w0, TWidth.Load(x + 3 * BatchColumns + i + 2 * TWidth.Count), c3);
                    d3 = TWidth.MultiplyAdd(w1, TWidth.Load(x + 3 * BatchColumns + i + 3 * TWidth.Count), d3);
                }
            }
        }

        if (TPairs.Count > 1)
        {
            Store2<TWidth, TVector>(carried + 2 * TWidth.Count, c0, d0);
            if (TTokens.Count > 1)
            {
                Store2<TWidth, TVector>(carried + 6 * TWidth.Count, c1, d1);
            }

            if (TTokens.Count > 2)
            {
                Store2<TWidth, TVector>(carried + 10 * TWidth.Count, c2, d2);
            }

            if (TTokens.Count > 3)
            {
                Store2<TWidth, TVector>(carried + 14 * TWidth.Count, c3, d3);
            }
        }

        Store2<TWidth, TVector>(carried, e0, o0);

        if (TTokens.Count > 1)
        {
            Store2<TWidth, TVector>(carried + 4 * TWidth.Count, e1, o1);
        }

        if (TTokens.Count > 2)
        {
            Store2<TWidth, TVector>(carried + 8 * TWidth.Count, e2, o2);
        }

        if (TTokens.Count > 3)
        {
            Store2<TWidth, TVector>(carried + 12 * TWidth.Count, e3, o3);
        }
    }

    /// <summary>Prefetches the weight lines one step of <see cref="Sweep{TWidth, TVector, TLoad, TTokens, TPairs}"/> reads (four vectors), from <paramref name="start"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchStep<TWidth, TVector, TLoad>(byte* start, bool toL2)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        PrefetchStepLine(start, toL2);
        if (4 * TWidth.Count * TLoad.ElementBytes > 64)
        {
            PrefetchStepLine(start + 64, toL2);
        }

        if (4 * TWidth.Count * TLoad.ElementBytes > 128)
        {
            PrefetchStepLine(start + 128, toL2);
            PrefetchStepLine(start + 192, toL2);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchStepLine(byte* line, bool toL2)
    {
        if (toL2)
        {
            Sse.Prefetch1(line);
        }
        else
        {
            Sse.Prefetch0(line);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load2<TWidth, TVector>(float* source, out TVector a, out TVector b)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        a = TWidth.Load(source);
        b = TWidth.Load(source + TWidth.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2<TWidth, TVector>(float* destination, TVector a, TVector b)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        TWidth.Store(a, destination);
        TWidth.Store(b, destination + TWidth.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load4<TWidth, TVector>(float* source, out TVector a, out TVector b, out TVector c, out TVector d)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
    {
        Load2<TWidth, TVector>(source, out a, out b);
        Load2<TWidth, TVector>(source + 2 * TWidth.Count, out c, out d);
    }

    /// <summary>
    /// A prefetch of every cache line from <paramref name="start"/> to <paramref name="stop"/> (Sse required), into L1
    /// or, with <paramref name="toL2"/>, into L2 (<c>prefetcht1</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchRange(byte* start, byte* stop, bool toL2 = false)
    {
        for (byte* line = start; line < stop; line += 64)
        {
            if (toL2)
            {
                Sse.Prefetch1(line);
            }
            else
            {
                Sse.Prefetch0(line);
            }
        }
    }

    /// <summary>
    /// Starts the reads of the weights ahead of the row about to be read, up to <paramref name="end"/>, as the
    /// CPU family prefers (<see cref="PrefetchLines"/>). On AMD Zen the hardware prefetchers stop at each page boundary
    /// and take a while to pick up the next page (a 2048-column BF16 row is exactly one page), so touching the first
    /// two lines of each page <see cref="PageLeadBytes"/> ahead gets each page's stream going early, while prefetching
    /// every line was 8–22% slower there. On an Intel Xeon (Sapphire Rapids class) it is the reverse: a prefetch of
    /// every line <see cref="LineLeadBytes"/> ahead read the weights about 25% faster than the page touches.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchAhead(byte* row, long length, byte* end)
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        if (PrefetchLines)
        {
            byte* stopLine = row + LineLeadBytes + length;
            PrefetchRange(row + LineLeadBytes, stopLine < end ? stopLine : end);
            return;
        }

        byte* stop = row + PageLeadBytes + length;
        if (stop > end)
        {
            stop = end;
        }

        for (byte* page = row + PageLeadBytes; page < stop; page += 4096)
        {
            Sse.Prefetch0(page);
            Sse.Prefetch0(page + 64);
        }
    }

    private static float Dot(TensorDType type, byte* row, float* x, float* arranged, int columns, KernelPath path, byte* ahead)
    {
        bool bf16 = type == TensorDType.BF16;
        return path switch
        {
            KernelPath.Avx512 when bf16 => Dot<Width512, Vector512<float>, Bf16>(row, x, arranged, columns, ahead),
            KernelPath.Avx512 => Dot<Width512, Vector512<float>, F32>(row, x, arranged, columns, ahead),
            KernelPath.Avx2 when bf16 => Dot<Width256, Vector256<float>, Bf16>(row, x, arranged, columns, ahead),
            KernelPath.Avx2 => Dot<Width256, Vector256<float>, F32>(row, x, arranged, columns, ahead),
            KernelPath.Portable when bf16 => Dot<Width128, Vector128<float>, Bf16>(row, x, arranged, columns, ahead),
            KernelPath.Portable => Dot<Width128, Vector128<float>, F32>(row, x, arranged, columns, ahead),
            _ => throw new ArgumentOutOfRangeException(nameof(path), path, "no matrix-vector kernel for this path"),
        };
    }

    // Four accumulators hide the FMA latency; the x loads hit L1. TWidth.Count is written out in each offset rather than
    // kept in a local: that way the JIT folds it into the load addresses, as in a hand-written copy per width. One
    // token's decode layout is x's first columns in order (each pair's columns reordered for BF16).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot<TWidth, TVector, TLoad>(byte* row, float* x, float* arranged, int columns, byte* ahead)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        TVector a = default, b = default, c = default, d = default;
        int mainEnd = columns - columns % (4 * TWidth.Count);
        TVector high = TWidth.HighHalves;
        for (nint i = 0; i < mainEnd; i += 4 * TWidth.Count)
        {
            if (ahead != null)
            {
                PrefetchStep<TWidth, TVector, TLoad>(ahead + i * TLoad.ElementBytes, StepPrefetchToL2);
            }

            TWidth.LoadWeightPair<TLoad>(row, i, high, out TVector w0, out TVector w1);
            a = TWidth.MultiplyAdd(w0, TWidth.Load(arranged + i), a);
            b = TWidth.MultiplyAdd(w1, TWidth.Load(arranged + i + TWidth.Count), b);
            TWidth.LoadWeightPair<TLoad>(row, i + 2 * TWidth.Count, high, out w0, out w1);
            if (TwoChains<TWidth, TVector>())
            {
                a = TWidth.MultiplyAdd(w0, TWidth.Load(arranged + i + 2 * TWidth.Count), a);
                b = TWidth.MultiplyAdd(w1, TWidth.Load(arranged + i + 3 * TWidth.Count), b);
            }
            else
            {
                c = TWidth.MultiplyAdd(w0, TWidth.Load(arranged + i + 2 * TWidth.Count), c);
                d = TWidth.MultiplyAdd(w1, TWidth.Load(arranged + i + 3 * TWidth.Count), d);
            }
        }

        TVector sum = Combine<TWidth, TVector, TLoad>(row, x, a, b, c, d, mainEnd, columns, out int k);
        return TWidth.Sum4(sum, default, default, default).ToScalar() + Tail<TLoad>(row, x, k, columns);
    }

    /// <summary>
    /// Whether a row's products run in two chains (the even and the odd columns of each weight pair) instead of four:
    /// with AVX-512, so that the batched kernel keeps two rows of four tokens in its 32 registers and loads each x
    /// vector once for both rows. The one-token kernel sums the same way, so a sequence's results do not depend on its batch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TwoChains<TWidth, TVector>()
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct => TWidth.Registers >= 32;

    /// <summary>
    /// Finishes up to four tokens of one row as <see cref="Dot{TWidth, TVector, TLoad}"/> does, from their chains at
    /// <paramref name="carried"/> (4 · Count floats per token) and x rows <paramref name="columns"/> apart, writing
    /// y[t · <paramref name="yStride"/>]: the horizontal sums four at a time, which give each lane the same bits as one alone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishFour<TWidth, TVector, TLoad>(byte* row, float* x, float* carried, int tokens, int mainEnd, int columns, float* y, long yStride)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        TVector s0 = default, s1 = default, s2 = default, s3 = default;
        int k = mainEnd;
        for (int t = 0; t < tokens; t++)
        {
            Load4<TWidth, TVector>(carried + t * 4 * TWidth.Count, out TVector a, out TVector b, out TVector c, out TVector d);
            TVector sum = Combine<TWidth, TVector, TLoad>(row, x + (long)t * columns, a, b, c, d, mainEnd, columns, out k);
            switch (t)
            {
                case 0: s0 = sum; break;
                case 1: s1 = sum; break;
                case 2: s2 = sum; break;
                default: s3 = sum; break;
            }
        }

        Vector128<float> sums = TWidth.Sum4(s0, s1, s2, s3);
        for (int t = 0; t < tokens; t++)
        {
            y[t * yStride] = sums.GetElement(t) + Tail<TLoad>(row, x + (long)t * columns, k, columns);
        }
    }

    /// <summary>
    /// A row's four chains over columns [0, <paramref name="mainEnd"/>) with the whole vectors after them added into
    /// chain a (natural order, from <paramref name="x"/>), combined into one vector as both kernels do;
    /// <paramref name="k"/> is where the scalar tail starts.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Combine<TWidth, TVector, TLoad>(byte* row, float* x, TVector a, TVector b, TVector c, TVector d, int mainEnd, int columns, out int k)
        where TWidth : struct, IVectorWidth<TVector>
        where TVector : struct
        where TLoad : struct, IWeightLoad
    {
        k = mainEnd;
        for (; k <= columns - TWidth.Count; k += TWidth.Count)
        {
            a = TWidth.MultiplyAdd(TWidth.LoadWeights<TLoad>(row, k), TWidth.Load(x + k), a);
        }

        return TWidth.Add(TWidth.Add(a, b), TWidth.Add(c, d));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail<TLoad>(byte* row, float* x, int from, int columns)
        where TLoad : struct, IWeightLoad
    {
        float sum = 0;
        for (int c = from; c < columns; c++)
        {
            sum += TLoad.Load(row, c) * x[c];
        }

        return sum;
    }
}
