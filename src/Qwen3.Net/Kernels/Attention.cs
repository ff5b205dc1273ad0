using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels;

/// <summary>
/// Causal grouped-query attention of a block of new tokens over the KV cache of one layer.
/// Query head h reads key/value head h / (heads / kvHeads); token t (at position start + t) sees positions 0..start + t.
/// </summary>
internal static unsafe class Attention
{
    // Query rows (tokens × heads of a group) that share one pass over their kv head's cache: enough that a prompt's
    // keys and values are read from L2/L3 once per 16 tokens (at 16/8 heads) instead of once per token, few enough
    // that their q and o rows stay in L1 beside a block of keys or values.
    private const int RowsPerItem = 32;

    /// <summary>Score scratch <c>Compute</c> needs: one row per query row of an item, per thread.</summary>
    public static long ScratchLength(int threads, int heads, int kvHeads, int length) =>
        (long)threads * TokensPerItem(heads / kvHeads) * (heads / kvHeads) * length;

    private static int TokensPerItem(int group) => Math.Max(1, RowsPerItem / group);

    /// <summary>
    /// Parallel over (kv head, block of tokens): each item reads its key and value rows once for all the query heads
    /// that share them and all the tokens of the block, so a prompt streams the cache once per block of tokens rather
    /// than once per query head and token.
    /// </summary>
    /// <param name="pool">Threads to share the (kv head, block of tokens) items.</param>
    /// <param name="queries">[tokens, heads, headDim], already normalized and rotated.</param>
    /// <param name="keyPages">
    /// Addresses of the layer's key pages in position order, each [kvHeads, pagePositions, headDim] floats that do not
    /// move (pinned or native) while this runs; filled up to start + tokens.
    /// </param>
    /// <param name="valuePages">The layer's value pages, laid out as the key pages.</param>
    /// <param name="pagePositions">Positions per page: a multiple of 32, so no block of keys or values straddles two pages, or any number with a single page.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads; divides <paramref name="heads"/>.</param>
    /// <param name="headDim">Elements per head.</param>
    /// <param name="start">Position of the first new token.</param>
    /// <param name="tokens">New tokens in the block.</param>
    /// <param name="output">[tokens, heads, headDim].</param>
    /// <param name="scores">scratch of at least <see cref="ScratchLength"/>(pool threads, heads, kvHeads, start + tokens) floats.</param>
    public static void Compute(
        WorkerPool pool, ReadOnlySpan<float> queries, ReadOnlySpan<nint> keyPages, ReadOnlySpan<nint> valuePages, int pagePositions,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores) =>
        Compute(pool, queries, keyPages, valuePages, pagePositions, heads, kvHeads, headDim, start, tokens, output, scores, KernelPaths.Default);

    /// <summary>
    /// The same over a contiguous cache, [kvHeads, stride, headDim] per span: the one-page case, for tests and
    /// benchmarks.
    /// </summary>
    public static void Compute(
        WorkerPool pool, ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores, KernelPath path)
    {
        if (keys.Length < (long)kvHeads * stride * headDim || values.Length < keys.Length)
        {
            throw new ArgumentException($"A contiguous cache of {kvHeads} heads × {stride} positions × {headDim} needs {(long)kvHeads * stride * headDim} floats; got {keys.Length} keys and {values.Length} values.");
        }

        fixed (float* k = keys)
        fixed (float* v = values)
        {
            nint keyPage = (nint)k, valuePage = (nint)v;
            Compute(pool, queries, new ReadOnlySpan<nint>(ref keyPage), new ReadOnlySpan<nint>(ref valuePage), stride, heads, kvHeads, headDim, start, tokens, output, scores, path);
        }
    }

    internal static void Compute(
        WorkerPool pool, ReadOnlySpan<float> queries, ReadOnlySpan<nint> keyPages, ReadOnlySpan<nint> valuePages, int pagePositions,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores, KernelPath path)
    {
        int length = start + tokens;
        if (heads % kvHeads != 0 || queries.Length < tokens * heads * headDim || output.Length < tokens * heads * headDim
            || scores.Length < ScratchLength(pool.ThreadCount, heads, kvHeads, length))
        {
            throw new ArgumentException($"Attention buffers too small for {tokens} tokens at {start}, {heads}/{kvHeads} heads of {headDim}.");
        }

        if (pagePositions < 1 || (keyPages.Length > 1 && pagePositions % 32 != 0) || valuePages.Length != keyPages.Length
            || (long)keyPages.Length * pagePositions < length || keyPages.Contains(0) || valuePages.Contains(0))
        {
            throw new ArgumentException($"A KV cache of {keyPages.Length} key and {valuePages.Length} value pages of {pagePositions} positions cannot hold {length} positions (several pages need a multiple of 32 positions each, and no null page).");
        }

        fixed (float* q = queries)
        fixed (nint* k = keyPages)
        fixed (nint* v = valuePages)
        fixed (float* o = output)
        fixed (float* s = scores)
        {
            // The vector kernels need whole vectors per head; TensorPrimitives takes any other head_dim (and the scalar
            // path, which has no kernels of its own here).
            int width = path switch { KernelPath.Avx512 => 16, KernelPath.Avx2 => 8, _ => 4 };
            bool vectorized = path != KernelPath.Scalar && headDim % width == 0;
            int perItem = TokensPerItem(heads / kvHeads);
            int blocks = (tokens + perItem - 1) / perItem;
            var job = new Job(q, k, v, o, s, pagePositions, heads, kvHeads, headDim, start, tokens, perItem, blocks, vectorized ? path : KernelPath.Scalar);
            pool.Run(ref job, kvHeads * blocks);
        }
    }

    /// <summary>The definition, one head at a time: the reference the parallel kernel is tested against.</summary>
    public static void ComputeScalar(
        ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output)
    {
        float scale = 1f / MathF.Sqrt(headDim);
        int group = heads / kvHeads;
        var s = new float[start + tokens];
        for (int t = 0; t < tokens; t++)
        {
            int length = start + t + 1;
            for (int h = 0; h < heads; h++)
            {
                int q = (t * heads + h) * headDim;
                int kv = h / group * stride * headDim;
                float max = float.NegativeInfinity;
                for (int p = 0; p < length; p++)
                {
                    float dot = 0;
                    for (int i = 0; i < headDim; i++)
                    {
                        dot += queries[q + i] * keys[kv + p * headDim + i];
                    }

                    s[p] = dot * scale;
                    max = MathF.Max(max, s[p]);
                }

                float sum = 0;
                for (int p = 0; p < length; p++)
                {
                    s[p] = MathF.Exp(s[p] - max);
                    sum += s[p];
                }

                for (int i = 0; i < headDim; i++)
                {
                    float acc = 0;
                    for (int p = 0; p < length; p++)
                    {
                        acc += s[p] * values[kv + p * headDim + i];
                    }

                    output[q + i] = acc / sum;
                }
            }
        }
    }

    private readonly struct Job(
        float* queries, nint* keyPages, nint* valuePages, float* output, float* scores, int pagePositions,
        int heads, int kvHeads, int headDim, int start, int tokens, int perItem, int blocks, KernelPath path) : IRangeJob
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Execute(int first, int end, int worker)
        {
            int group = heads / kvHeads;
            int length = start + tokens;
            float scale = 1f / MathF.Sqrt(headDim);
            long tokenStride = (long)heads * headDim;
            float* s = scores + (long)worker * perItem * group * length;
            for (int item = first; item < end; item++)
            {
                // Consecutive items share a kv head, so its keys and values stay in cache across blocks.
                int kvHead = item / blocks;
                int t0 = item % blocks * perItem;
                int count = Math.Min(perItem, tokens - t0);
                float* q = queries + t0 * tokenStride + kvHead * group * headDim;
                float* o = output + t0 * tokenStride + kvHead * group * headDim;
                var k = new KvHeadRows(keyPages, pagePositions, kvHead, headDim);
                var v = new KvHeadRows(valuePages, pagePositions, kvHead, headDim);

                // Token i of the block (position start + t0 + i) sees the first start + t0 + i + 1 positions; its
                // score rows are s + (i · group + g) · length.
                int firstVisible = start + t0 + 1;
                switch (path)
                {
                    case KernelPath.Avx512:
                        Item<Width512, Vector512<float>>(q, k, v, o, s, tokenStride, group, length, firstVisible, count, headDim, scale);
                        break;
                    case KernelPath.Avx2:
                        Item<Width256, Vector256<float>>(q, k, v, o, s, tokenStride, group, length, firstVisible, count, headDim, scale);
                        break;
                    case KernelPath.Portable:
                        Item<Width128, Vector128<float>>(q, k, v, o, s, tokenStride, group, length, firstVisible, count, headDim, scale);
                        break;
                    default:
                        ItemTensorPrimitives(q, k, v, o, s, tokenStride, group, length, firstVisible, count, headDim, scale);
                        break;
                }
            }
        }

        /// <summary>One item with the vector kernels: scores, softmax, weighted sum.</summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Item<TWidth, TVector>(
            float* q, KvHeadRows k, KvHeadRows v, float* o, float* s, long tokenStride, int group, int length, int firstVisible, int count, int headDim, float scale)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            Scores<TWidth, TVector>(q, tokenStride, k, s, group, length, firstVisible, count, headDim, scale);
            SoftMaxRows(s, group, length, firstVisible, count);
            WeightedSum<TWidth, TVector>(v, s, o, tokenStride, group, length, firstVisible, count, headDim);
        }

        /// <summary>One item for a head_dim that is not a whole number of vectors: a TensorPrimitives call per row and position.</summary>
        private static void ItemTensorPrimitives(
            float* q, KvHeadRows k, KvHeadRows v, float* o, float* s, long tokenStride, int group, int length, int firstVisible, int count, int headDim, float scale)
        {
            for (int i = 0; i < count; i++)
            {
                for (int p = 0; p < firstVisible + i; p++)
                {
                    var key = new ReadOnlySpan<float>(k.Row(p), headDim);
                    for (int g = 0; g < group; g++)
                    {
                        var query = new ReadOnlySpan<float>(q + i * tokenStride + g * headDim, headDim);
                        s[(i * group + g) * length + p] = TensorPrimitives.Dot(query, key) * scale;
                    }
                }
            }

            SoftMaxRows(s, group, length, firstVisible, count);
            for (int i = 0; i < count; i++)
            {
                float* oi = o + i * tokenStride;
                new Span<float>(oi, group * headDim).Clear();
                for (int p = 0; p < firstVisible + i; p++)
                {
                    var value = new ReadOnlySpan<float>(v.Row(p), headDim);
                    for (int g = 0; g < group; g++)
                    {
                        var og = new Span<float>(oi + g * headDim, headDim);
                        TensorPrimitives.MultiplyAdd(value, s[(i * group + g) * length + p], og, og);
                    }
                }
            }
        }

        private static void SoftMaxRows(float* s, int group, int length, int firstVisible, int count)
        {
            for (int i = 0; i < count; i++)
            {
                for (int g = 0; g < group; g++)
                {
                    // TensorPrimitives.SoftMax exponentiates the scores as they are, and exp overflows float32 above about
                    // 88: one large score made every logit NaN. Subtracting the row's maximum first, as the definition
                    // does, keeps every exponent at or below zero.
                    var row = new Span<float>(s + (i * group + g) * length, firstVisible + i);
                    TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                    TensorPrimitives.SoftMax(row, row);
                }
            }
        }

        // At head_dim 128 a TensorPrimitives call per (position, head) spends about as long on its entry checks and
        // remainder handling as on its 8 FMAs. Here eight positions go at once: eight independent FMA chains per row
        // keep both FMA pipes busy where one chain would wait out each FMA's latency. With AVX-512's 32 registers two
        // query rows go together, so each key vector loaded serves both (10 loads per 16 FMAs, where one row needs 9 per
        // 8), and their sums are reduced four at a time. Query row r is head r % group of token r / group; every row of
        // the block takes its turn on each block of eight keys, which stays in L1 meanwhile.
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Scores<TWidth, TVector>(float* q, long tokenStride, KvHeadRows k, float* s, int group, int length, int firstVisible, int count, int headDim, float scale)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            int rows = count * group;
            int lastVisible = firstVisible + count - 1;
            for (int p = 0; p + 8 <= lastVisible; p += 8)
            {
                float* key = k.Row(p);
                if (p + 8 < lastVisible)
                {
                    PrefetchPositions(k.Row(p + 8), Math.Min(8, lastVisible - (p + 8)), headDim);
                }

                // The rows that see all eight positions: a suffix, since later tokens see more.
                int r = Math.Max(0, p + 8 - firstVisible) * group;
                if (TWidth.Registers >= 32)
                {
                    // Sixteen accumulators for two rows need AVX-512's 32 registers.
                    for (; r + 2 <= rows; r += 2)
                    {
                        Scores8<TWidth, TVector, TwoTokens>(QueryRow(q, r, group, tokenStride, headDim), QueryRow(q, r + 1, group, tokenStride, headDim), key, headDim, scale, s + r * length + p, s + (r + 1) * length + p);
                    }
                }

                for (; r < rows; r++)
                {
                    float* qr = QueryRow(q, r, group, tokenStride, headDim);
                    Scores8<TWidth, TVector, OneToken>(qr, qr, key, headDim, scale, s + r * length + p, s + r * length + p);
                }
            }

            // Each row's last visible positions past its last whole block of eight, one at a time.
            for (int r = 0; r < rows; r++)
            {
                float* qr = QueryRow(q, r, group, tokenStride, headDim);
                int visible = firstVisible + r / group;
                for (int p = visible & ~7; p < visible; p++)
                {
                    float* key = k.Row(p);
                    TVector acc = default;
                    for (int d = 0; d < headDim; d += TWidth.Count)
                    {
                        acc = TWidth.MultiplyAdd(TWidth.Load(qr + d), TWidth.Load(key + d), acc);
                    }

                    s[r * length + p] = TWidth.Sum(acc) * scale;
                }
            }
        }

        /// <summary>
        /// Asks for the next block of keys or values while this one is computed. The cache sits in 4 KiB pages, one page
        /// per 8 positions at head_dim 128, and the hardware prefetchers stop at every page boundary: without this a long
        /// context waits for DRAM at every block. Probe, one token at position 2047, 16/8 heads: 1.13–1.24× on AVX-512
        /// and 1.46–1.97× on AVX2; prompts gain 4–8% on AVX-512 (docs/benchmarks.md).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void PrefetchPositions(float* first, int positions, int headDim)
        {
            if (!Sse.IsSupported)
            {
                return;
            }

            float* end = first + (long)Math.Max(0, positions) * headDim;
            for (float* line = first; line < end; line += 16)
            {
                Sse.Prefetch0(line);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float* QueryRow(float* q, int r, int group, long tokenStride, int headDim) => q + r / group * tokenStride + r % group * headDim;

        /// <summary>
        /// The scaled dot products of query row a, and with <typeparamref name="TRows"/> two also row b, with eight
        /// consecutive keys, into sa[0..8) and sb[0..8); with two rows each key vector loaded serves both.
        /// </summary>
        /// <remarks>
        /// Not inlined: inside the larger caller the JIT kept the eight accumulators' homes on the stack and stored each
        /// one after every FMA (AVX2 disassembly), which made single-token attention 0.7× the TensorPrimitives kernel.
        /// </remarks>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Scores8<TWidth, TVector, TRows>(float* qa, float* qb, float* key, int headDim, float scale, float* sa, float* sb)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
            where TRows : struct, ITokenCount
        {
            bool two = TRows.Count > 1;
            float* k0 = key, k1 = key + headDim, k2 = key + 2 * headDim, k3 = key + 3 * headDim;
            float* k4 = key + 4 * headDim, k5 = key + 5 * headDim, k6 = key + 6 * headDim, k7 = key + 7 * headDim;
            TVector a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            TVector b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            for (int d = 0; d < headDim; d += TWidth.Count)
            {
                TVector xa = TWidth.Load(qa + d), xb = two ? TWidth.Load(qb + d) : default;
                MultiplyAdd2<TWidth, TVector, TRows>(k0 + d, xa, xb, ref a0, ref b0);
                MultiplyAdd2<TWidth, TVector, TRows>(k1 + d, xa, xb, ref a1, ref b1);
                MultiplyAdd2<TWidth, TVector, TRows>(k2 + d, xa, xb, ref a2, ref b2);
                MultiplyAdd2<TWidth, TVector, TRows>(k3 + d, xa, xb, ref a3, ref b3);
                MultiplyAdd2<TWidth, TVector, TRows>(k4 + d, xa, xb, ref a4, ref b4);
                MultiplyAdd2<TWidth, TVector, TRows>(k5 + d, xa, xb, ref a5, ref b5);
                MultiplyAdd2<TWidth, TVector, TRows>(k6 + d, xa, xb, ref a6, ref b6);
                MultiplyAdd2<TWidth, TVector, TRows>(k7 + d, xa, xb, ref a7, ref b7);
            }

            var factor = Vector256.Create(scale);
            (Vector256.Create(TWidth.Sum4(a0, a1, a2, a3), TWidth.Sum4(a4, a5, a6, a7)) * factor).Store(sa);
            if (two) (Vector256.Create(TWidth.Sum4(b0, b1, b2, b3), TWidth.Sum4(b4, b5, b6, b7)) * factor).Store(sb);
        }

        /// <summary>
        /// o[r] = Σ_p s[r, p] · v[p] for the block's query rows. Per block of 32 positions (16 KiB of values at head_dim
        /// 128, read from memory once and kept in L1 for every row), each row accumulates eight vectors of o at a time in
        /// registers, so o is loaded and stored once per block; with AVX-512 two rows go together and each value vector
        /// loaded serves both.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void WeightedSum<TWidth, TVector>(KvHeadRows v, float* s, float* o, long tokenStride, int group, int length, int firstVisible, int count, int headDim)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            const int BlockPositions = 32;
            int rows = count * group;
            int lastVisible = firstVisible + count - 1;
            for (int p0 = 0; p0 < lastVisible; p0 += BlockPositions)
            {
                bool first = p0 == 0;
                if (p0 + BlockPositions < lastVisible)
                {
                    PrefetchPositions(v.Row(p0 + BlockPositions), Math.Min(BlockPositions, lastVisible - (p0 + BlockPositions)), headDim);
                }

                // The rows that see position p0; row r + 1 sees as much as row r or one position more.
                int r = Math.Max(0, p0 + 1 - firstVisible) * group;
                if (TWidth.Registers >= 32)
                {
                    for (; r + 2 <= rows; r += 2)
                    {
                        int endA = Math.Min(firstVisible + r / group, p0 + BlockPositions);
                        int endB = Math.Min(firstVisible + (r + 1) / group, p0 + BlockPositions);
                        float* oa = QueryRow(o, r, group, tokenStride, headDim), ob = QueryRow(o, r + 1, group, tokenStride, headDim);
                        Accumulate<TWidth, TVector, TwoTokens>(v.Row(p0), s + r * length, oa, s + (r + 1) * length, ob, p0, endA, headDim, first);
                        if (endB > endA)
                        {
                            Accumulate<TWidth, TVector, OneToken>(v.Row(endA), s + (r + 1) * length, ob, s + (r + 1) * length, ob, endA, endB, headDim, first: false);
                        }
                    }
                }

                for (; r < rows; r++)
                {
                    float* row = QueryRow(o, r, group, tokenStride, headDim);
                    Accumulate<TWidth, TVector, OneToken>(v.Row(p0), s + r * length, row, s + r * length, row, p0, Math.Min(firstVisible + r / group, p0 + BlockPositions), headDim, first);
                }
            }
        }

        /// <summary>
        /// oa (+)= Σ_{p0 ≤ p &lt; p1} sa[p] · v[p], and with <typeparamref name="TRows"/> two likewise ob from sb, where
        /// <paramref name="values"/> is v[p0] and the rows follow each other (one page); <paramref name="first"/> starts
        /// from zero. Eight registers of each o at a time, so the FMAs of one position do not wait for each other; with
        /// two rows each value vector loaded serves both.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Accumulate<TWidth, TVector, TRows>(float* values, float* sa, float* oa, float* sb, float* ob, int p0, int p1, int headDim, bool first)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
            where TRows : struct, ITokenCount
        {
            bool two = TRows.Count > 1;
            int n = TWidth.Count;
            int d = 0;
            for (; d + 8 * n <= headDim; d += 8 * n)
            {
                float* da = oa + d, db = ob + d;
                TVector a0 = Initial<TWidth, TVector>(da, first), a1 = Initial<TWidth, TVector>(da + n, first);
                TVector a2 = Initial<TWidth, TVector>(da + 2 * n, first), a3 = Initial<TWidth, TVector>(da + 3 * n, first);
                TVector a4 = Initial<TWidth, TVector>(da + 4 * n, first), a5 = Initial<TWidth, TVector>(da + 5 * n, first);
                TVector a6 = Initial<TWidth, TVector>(da + 6 * n, first), a7 = Initial<TWidth, TVector>(da + 7 * n, first);
                TVector b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
                if (two)
                {
                    b0 = Initial<TWidth, TVector>(db, first);
                    b1 = Initial<TWidth, TVector>(db + n, first);
                    b2 = Initial<TWidth, TVector>(db + 2 * n, first);
                    b3 = Initial<TWidth, TVector>(db + 3 * n, first);
                    b4 = Initial<TWidth, TVector>(db + 4 * n, first);
                    b5 = Initial<TWidth, TVector>(db + 5 * n, first);
                    b6 = Initial<TWidth, TVector>(db + 6 * n, first);
                    b7 = Initial<TWidth, TVector>(db + 7 * n, first);
                }

                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    TVector wa = TWidth.Broadcast(sa[p]), wb = two ? TWidth.Broadcast(sb[p]) : default;
                    MultiplyAdd2<TWidth, TVector, TRows>(value, wa, wb, ref a0, ref b0);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + n, wa, wb, ref a1, ref b1);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 2 * n, wa, wb, ref a2, ref b2);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 3 * n, wa, wb, ref a3, ref b3);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 4 * n, wa, wb, ref a4, ref b4);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 5 * n, wa, wb, ref a5, ref b5);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 6 * n, wa, wb, ref a6, ref b6);
                    MultiplyAdd2<TWidth, TVector, TRows>(value + 7 * n, wa, wb, ref a7, ref b7);
                }

                Store8<TWidth, TVector>(da, a0, a1, a2, a3, a4, a5, a6, a7);
                if (two) Store8<TWidth, TVector>(db, b0, b1, b2, b3, b4, b5, b6, b7);
            }

            for (; d < headDim; d += n)
            {
                TVector a = Initial<TWidth, TVector>(oa + d, first), b = two ? Initial<TWidth, TVector>(ob + d, first) : default;
                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    MultiplyAdd2<TWidth, TVector, TRows>(value, TWidth.Broadcast(sa[p]), two ? TWidth.Broadcast(sb[p]) : default, ref a, ref b);
                }

                TWidth.Store(a, oa + d);
                if (two) TWidth.Store(b, ob + d);
            }
        }

        /// <summary>a += v · ma and, with <typeparamref name="TRows"/> two, b += v · mb, v loaded once from <paramref name="shared"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void MultiplyAdd2<TWidth, TVector, TRows>(float* shared, TVector ma, TVector mb, ref TVector a, ref TVector b)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
            where TRows : struct, ITokenCount
        {
            TVector v = TWidth.Load(shared);
            a = TWidth.MultiplyAdd(v, ma, a);
            if (TRows.Count > 1) b = TWidth.MultiplyAdd(v, mb, b);
        }

        /// <summary>A row's partial sums so far: zero in the first block of positions, else what the earlier blocks left in o.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TVector Initial<TWidth, TVector>(float* o, bool first)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct => first ? default : TWidth.Load(o);

        /// <summary>Eight consecutive vectors of o.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store8<TWidth, TVector>(float* o, TVector v0, TVector v1, TVector v2, TVector v3, TVector v4, TVector v5, TVector v6, TVector v7)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            int n = TWidth.Count;
            TWidth.Store(v0, o);
            TWidth.Store(v1, o + n);
            TWidth.Store(v2, o + 2 * n);
            TWidth.Store(v3, o + 3 * n);
            TWidth.Store(v4, o + 4 * n);
            TWidth.Store(v5, o + 5 * n);
            TWidth.Store(v6, o + 6 * n);
            TWidth.Store(v7, o + 7 * n);
        }
    }
}
