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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
                if (typeof(TWidth) == typeof(Width512))
                {
                    // Sixteen accumulators for two rows need AVX-512's 32 registers.
                    for (; r + 2 <= rows; r += 2)
                    {
                        Scores8Of2(QueryRow(q, r, group, tokenStride, headDim), QueryRow(q, r + 1, group, tokenStride, headDim), key, headDim, scale, s + r * length + p, s + (r + 1) * length + p);
                    }
                }

                for (; r < rows; r++)
                {
                    Scores8<TWidth, TVector>(QueryRow(q, r, group, tokenStride, headDim), key, headDim, scale, s + r * length + p);
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

        /// <summary>The scaled dot products of query rows a and b with eight consecutive keys, into sa[0..8) and sb[0..8).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Scores8Of2(float* qa, float* qb, float* key, int headDim, float scale, float* sa, float* sb)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            for (int d = 0; d < headDim; d += Vector512<float>.Count)
            {
                Vector512<float> xa = Vector512.Load(qa + d), xb = Vector512.Load(qb + d);
                Vector512<float> kv = Vector512.Load(key + d);
                a0 = Avx512F.FusedMultiplyAdd(xa, kv, a0);
                b0 = Avx512F.FusedMultiplyAdd(xb, kv, b0);
                kv = Vector512.Load(key + headDim + d);
                a1 = Avx512F.FusedMultiplyAdd(xa, kv, a1);
                b1 = Avx512F.FusedMultiplyAdd(xb, kv, b1);
                kv = Vector512.Load(key + 2 * headDim + d);
                a2 = Avx512F.FusedMultiplyAdd(xa, kv, a2);
                b2 = Avx512F.FusedMultiplyAdd(xb, kv, b2);
                kv = Vector512.Load(key + 3 * headDim + d);
                a3 = Avx512F.FusedMultiplyAdd(xa, kv, a3);
                b3 = Avx512F.FusedMultiplyAdd(xb, kv, b3);
                kv = Vector512.Load(key + 4 * headDim + d);
                a4 = Avx512F.FusedMultiplyAdd(xa, kv, a4);
                b4 = Avx512F.FusedMultiplyAdd(xb, kv, b4);
                kv = Vector512.Load(key + 5 * headDim + d);
                a5 = Avx512F.FusedMultiplyAdd(xa, kv, a5);
                b5 = Avx512F.FusedMultiplyAdd(xb, kv, b5);
                kv = Vector512.Load(key + 6 * headDim + d);
                a6 = Avx512F.FusedMultiplyAdd(xa, kv, a6);
                b6 = Avx512F.FusedMultiplyAdd(xb, kv, b6);
                kv = Vector512.Load(key + 7 * headDim + d);
                a7 = Avx512F.FusedMultiplyAdd(xa, kv, a7);
                b7 = Avx512F.FusedMultiplyAdd(xb, kv, b7);
            }

            var factor = Vector256.Create(scale);
            (Vector256.Create(HorizontalSum.Of4(a0, a1, a2, a3), HorizontalSum.Of4(a4, a5, a6, a7)) * factor).Store(sa);
            (Vector256.Create(HorizontalSum.Of4(b0, b1, b2, b3), HorizontalSum.Of4(b4, b5, b6, b7)) * factor).Store(sb);
        }

        /// <summary>The scaled dot products of one query row with eight consecutive keys, into s[0..8).</summary>
        /// <remarks>
        /// Not inlined: inside the larger caller the JIT kept the eight accumulators' homes on the stack and stored each
        /// one after every FMA (AVX2 disassembly), which made single-token attention 0.7× the TensorPrimitives kernel.
        /// </remarks>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Scores8<TWidth, TVector>(float* qr, float* key, int headDim, float scale, float* s)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            float* k0 = key, k1 = key + headDim, k2 = key + 2 * headDim, k3 = key + 3 * headDim;
            float* k4 = key + 4 * headDim, k5 = key + 5 * headDim, k6 = key + 6 * headDim, k7 = key + 7 * headDim;
            TVector a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (int d = 0; d < headDim; d += TWidth.Count)
            {
                TVector x = TWidth.Load(qr + d);
                a0 = TWidth.MultiplyAdd(x, TWidth.Load(k0 + d), a0);
                a1 = TWidth.MultiplyAdd(x, TWidth.Load(k1 + d), a1);
                a2 = TWidth.MultiplyAdd(x, TWidth.Load(k2 + d), a2);
                a3 = TWidth.MultiplyAdd(x, TWidth.Load(k3 + d), a3);
                a4 = TWidth.MultiplyAdd(x, TWidth.Load(k4 + d), a4);
                a5 = TWidth.MultiplyAdd(x, TWidth.Load(k5 + d), a5);
                a6 = TWidth.MultiplyAdd(x, TWidth.Load(k6 + d), a6);
                a7 = TWidth.MultiplyAdd(x, TWidth.Load(k7 + d), a7);
            }

            s[0] = TWidth.Sum(a0) * scale;
            s[1] = TWidth.Sum(a1) * scale;
            s[2] = TWidth.Sum(a2) * scale;
            s[3] = TWidth.Sum(a3) * scale;
            s[4] = TWidth.Sum(a4) * scale;
            s[5] = TWidth.Sum(a5) * scale;
            s[6] = TWidth.Sum(a6) * scale;
            s[7] = TWidth.Sum(a7) * scale;
        }

        /// <summary>
        /// o[r] = Σ_p s[r, p] · v[p] for the block's query rows. Per block of 32 positions (16 KiB of values at head_dim
        /// 128, read from memory once and kept in L1 for every row), each row accumulates eight vectors of o at a time in
        /// registers, so o is loaded and stored once per block; with AVX-512 two rows go together and each value vector
        /// loaded serves both.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
                if (typeof(TWidth) == typeof(Width512))
                {
                    for (; r + 2 <= rows; r += 2)
                    {
                        int endA = Math.Min(firstVisible + r / group, p0 + BlockPositions);
                        int endB = Math.Min(firstVisible + (r + 1) / group, p0 + BlockPositions);
                        float* oa = QueryRow(o, r, group, tokenStride, headDim), ob = QueryRow(o, r + 1, group, tokenStride, headDim);
                        Accumulate2(v.Row(p0), s + r * length, oa, s + (r + 1) * length, ob, p0, endA, headDim, first);
                        if (endB > endA)
                        {
                            Accumulate1<TWidth, TVector>(v.Row(endA), s + (r + 1) * length, ob, endA, endB, headDim, first: false);
                        }
                    }
                }

                for (; r < rows; r++)
                {
                    Accumulate1<TWidth, TVector>(v.Row(p0), s + r * length, QueryRow(o, r, group, tokenStride, headDim), p0, Math.Min(firstVisible + r / group, p0 + BlockPositions), headDim, first);
                }
            }
        }

        /// <summary>
        /// oa (+)= Σ_{p0 ≤ p &lt; p1} sa[p] · v[p], and likewise ob from sb, where <paramref name="values"/> is v[p0] and the
        /// rows follow each other (one page); <paramref name="first"/> starts from zero.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Accumulate2(float* values, float* sa, float* oa, float* sb, float* ob, int p0, int p1, int headDim, bool first)
        {
            int d = 0;
            for (; d + 128 <= headDim; d += 128)
            {
                float* da = oa + d, db = ob + d;
                Vector512<float> a0 = first ? default : Vector512.Load(da), a1 = first ? default : Vector512.Load(da + 16);
                Vector512<float> a2 = first ? default : Vector512.Load(da + 32), a3 = first ? default : Vector512.Load(da + 48);
                Vector512<float> a4 = first ? default : Vector512.Load(da + 64), a5 = first ? default : Vector512.Load(da + 80);
                Vector512<float> a6 = first ? default : Vector512.Load(da + 96), a7 = first ? default : Vector512.Load(da + 112);
                Vector512<float> b0 = first ? default : Vector512.Load(db), b1 = first ? default : Vector512.Load(db + 16);
                Vector512<float> b2 = first ? default : Vector512.Load(db + 32), b3 = first ? default : Vector512.Load(db + 48);
                Vector512<float> b4 = first ? default : Vector512.Load(db + 64), b5 = first ? default : Vector512.Load(db + 80);
                Vector512<float> b6 = first ? default : Vector512.Load(db + 96), b7 = first ? default : Vector512.Load(db + 112);
                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    var wa = Vector512.Create(sa[p]);
                    var wb = Vector512.Create(sb[p]);
                    Vector512<float> x = Vector512.Load(value);
                    a0 = Avx512F.FusedMultiplyAdd(x, wa, a0);
                    b0 = Avx512F.FusedMultiplyAdd(x, wb, b0);
                    x = Vector512.Load(value + 16);
                    a1 = Avx512F.FusedMultiplyAdd(x, wa, a1);
                    b1 = Avx512F.FusedMultiplyAdd(x, wb, b1);
                    x = Vector512.Load(value + 32);
                    a2 = Avx512F.FusedMultiplyAdd(x, wa, a2);
                    b2 = Avx512F.FusedMultiplyAdd(x, wb, b2);
                    x = Vector512.Load(value + 48);
                    a3 = Avx512F.FusedMultiplyAdd(x, wa, a3);
                    b3 = Avx512F.FusedMultiplyAdd(x, wb, b3);
                    x = Vector512.Load(value + 64);
                    a4 = Avx512F.FusedMultiplyAdd(x, wa, a4);
                    b4 = Avx512F.FusedMultiplyAdd(x, wb, b4);
                    x = Vector512.Load(value + 80);
                    a5 = Avx512F.FusedMultiplyAdd(x, wa, a5);
                    b5 = Avx512F.FusedMultiplyAdd(x, wb, b5);
                    x = Vector512.Load(value + 96);
                    a6 = Avx512F.FusedMultiplyAdd(x, wa, a6);
                    b6 = Avx512F.FusedMultiplyAdd(x, wb, b6);
                    x = Vector512.Load(value + 112);
                    a7 = Avx512F.FusedMultiplyAdd(x, wa, a7);
                    b7 = Avx512F.FusedMultiplyAdd(x, wb, b7);
                }

                a0.Store(da);
                a1.Store(da + 16);
                a2.Store(da + 32);
                a3.Store(da + 48);
                a4.Store(da + 64);
                a5.Store(da + 80);
                a6.Store(da + 96);
                a7.Store(da + 112);
                b0.Store(db);
                b1.Store(db + 16);
                b2.Store(db + 32);
                b3.Store(db + 48);
                b4.Store(db + 64);
                b5.Store(db + 80);
                b6.Store(db + 96);
                b7.Store(db + 112);
            }

            for (; d < headDim; d += Vector512<float>.Count)
            {
                Vector512<float> a = first ? default : Vector512.Load(oa + d), b = first ? default : Vector512.Load(ob + d);
                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    Vector512<float> x = Vector512.Load(value);
                    a = Avx512F.FusedMultiplyAdd(x, Vector512.Create(sa[p]), a);
                    b = Avx512F.FusedMultiplyAdd(x, Vector512.Create(sb[p]), b);
                }

                a.Store(oa + d);
                b.Store(ob + d);
            }
        }

        /// <summary>
        /// o (+)= Σ_{p0 ≤ p &lt; p1} s[p] · v[p], <paramref name="values"/> being v[p0] (rows of one page);
        /// <paramref name="first"/> starts from zero. Eight registers of o at a time, so the FMAs of one position do not
        /// wait for each other.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Accumulate1<TWidth, TVector>(float* values, float* s, float* o, int p0, int p1, int headDim, bool first)
            where TWidth : struct, IVectorWidth<TVector>
            where TVector : struct
        {
            int n = TWidth.Count;
            int d = 0;
            for (; d + 8 * n <= headDim; d += 8 * n)
            {
                float* od = o + d;
                TVector a0 = first ? default : TWidth.Load(od), a1 = first ? default : TWidth.Load(od + n);
                TVector a2 = first ? default : TWidth.Load(od + 2 * n), a3 = first ? default : TWidth.Load(od + 3 * n);
                TVector a4 = first ? default : TWidth.Load(od + 4 * n), a5 = first ? default : TWidth.Load(od + 5 * n);
                TVector a6 = first ? default : TWidth.Load(od + 6 * n), a7 = first ? default : TWidth.Load(od + 7 * n);
                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    TVector weight = TWidth.Broadcast(s[p]);
                    a0 = TWidth.MultiplyAdd(TWidth.Load(value), weight, a0);
                    a1 = TWidth.MultiplyAdd(TWidth.Load(value + n), weight, a1);
                    a2 = TWidth.MultiplyAdd(TWidth.Load(value + 2 * n), weight, a2);
                    a3 = TWidth.MultiplyAdd(TWidth.Load(value + 3 * n), weight, a3);
                    a4 = TWidth.MultiplyAdd(TWidth.Load(value + 4 * n), weight, a4);
                    a5 = TWidth.MultiplyAdd(TWidth.Load(value + 5 * n), weight, a5);
                    a6 = TWidth.MultiplyAdd(TWidth.Load(value + 6 * n), weight, a6);
                    a7 = TWidth.MultiplyAdd(TWidth.Load(value + 7 * n), weight, a7);
                }

                TWidth.Store(a0, od);
                TWidth.Store(a1, od + n);
                TWidth.Store(a2, od + 2 * n);
                TWidth.Store(a3, od + 3 * n);
                TWidth.Store(a4, od + 4 * n);
                TWidth.Store(a5, od + 5 * n);
                TWidth.Store(a6, od + 6 * n);
                TWidth.Store(a7, od + 7 * n);
            }

            for (; d < headDim; d += n)
            {
                TVector acc = first ? default : TWidth.Load(o + d);
                float* value = values + d;
                for (int p = p0; p < p1; p++, value += headDim)
                {
                    acc = TWidth.MultiplyAdd(TWidth.Load(value), TWidth.Broadcast(s[p]), acc);
                }

                TWidth.Store(acc, o + d);
            }
        }
    }
}
