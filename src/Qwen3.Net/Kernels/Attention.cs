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
    /// <summary>Score scratch <c>Compute</c> needs: one row per query head of a group, per thread.</summary>
    public static long ScratchLength(int threads, int heads, int kvHeads, int length) => (long)threads * (heads / kvHeads) * length;

    /// <summary>
    /// Parallel over (kv head, token): each item reads its key and value rows once for all the query heads that share
    /// them, so the cache is streamed once per token rather than once per query head.
    /// </summary>
    /// <param name="pool">Threads to share the (kv head, token) items.</param>
    /// <param name="queries">[tokens, heads, headDim], already normalized and rotated.</param>
    /// <param name="keys">[kvHeads, stride, headDim]: the layer's key cache, filled up to start + tokens.</param>
    /// <param name="values">[kvHeads, stride, headDim]: the layer's value cache.</param>
    /// <param name="stride">Positions between consecutive kv heads in the cache (its capacity).</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads; divides <paramref name="heads"/>.</param>
    /// <param name="headDim">Elements per head.</param>
    /// <param name="start">Position of the first new token.</param>
    /// <param name="tokens">New tokens in the block.</param>
    /// <param name="output">[tokens, heads, headDim].</param>
    /// <param name="scores">scratch of at least <see cref="ScratchLength"/>(pool threads, heads, kvHeads, start + tokens) floats.</param>
    public static void Compute(
        WorkerPool pool, ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores) =>
        Compute(pool, queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, output, scores, KernelPaths.Default);

    internal static void Compute(
        WorkerPool pool, ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores, KernelPath path)
    {
        int length = start + tokens;
        if (heads % kvHeads != 0 || queries.Length < tokens * heads * headDim || output.Length < tokens * heads * headDim
            || keys.Length < (long)(kvHeads - 1) * stride * headDim + length * headDim || values.Length < keys.Length
            || stride < length || scores.Length < ScratchLength(pool.ThreadCount, heads, kvHeads, length))
        {
            throw new ArgumentException($"Attention buffers too small for {tokens} tokens at {start}, {heads}/{kvHeads} heads of {headDim}, stride {stride}.");
        }

        fixed (float* q = queries)
        fixed (float* k = keys)
        fixed (float* v = values)
        fixed (float* o = output)
        fixed (float* s = scores)
        {
            bool fused = path == KernelPath.Avx512 && headDim % Vector512<float>.Count == 0;
            var job = new Job(q, k, v, o, s, stride, heads, kvHeads, headDim, start, tokens, fused);
            pool.Run(ref job, kvHeads * tokens);
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
        float* queries, float* keys, float* values, float* output, float* scores, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, bool fused) : IRangeJob
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int first, int end, int worker)
        {
            int group = heads / kvHeads;
            int length = start + tokens;
            float scale = 1f / MathF.Sqrt(headDim);
            float* s = scores + (long)worker * group * length;
            for (int item = first; item < end; item++)
            {
                // Consecutive items share a kv head, so its keys and values stay in cache across tokens.
                int kvHead = item / tokens;
                int t = item % tokens;
                int visible = start + t + 1;
                float* q = queries + ((long)t * heads + kvHead * group) * headDim;
                float* k = keys + (long)kvHead * stride * headDim;
                float* v = values + (long)kvHead * stride * headDim;
                if (fused)
                {
                    ScoresAvx512(q, k, s, group, length, visible, headDim, scale);
                }
                else
                {
                    for (int p = 0; p < visible; p++)
                    {
                        var key = new ReadOnlySpan<float>(k + (long)p * headDim, headDim);
                        for (int g = 0; g < group; g++)
                        {
                            s[g * length + p] = TensorPrimitives.Dot(new ReadOnlySpan<float>(q + g * headDim, headDim), key) * scale;
                        }
                    }
                }

                for (int g = 0; g < group; g++)
                {
                    var row = new Span<float>(s + g * length, visible);
                    TensorPrimitives.SoftMax(row, row);
                }

                float* o = output + ((long)t * heads + kvHead * group) * headDim;
                if (fused)
                {
                    WeightedSumAvx512(v, s, o, group, length, visible, headDim);
                    continue;
                }

                new Span<float>(o, group * headDim).Clear();

                for (int p = 0; p < visible; p++)
                {
                    var value = new ReadOnlySpan<float>(v + (long)p * headDim, headDim);
                    for (int g = 0; g < group; g++)
                    {
                        var og = new Span<float>(o + g * headDim, headDim);
                        TensorPrimitives.MultiplyAdd(value, s[g * length + p], og, og);
                    }
                }
            }
        }

        // At head_dim 128 a TensorPrimitives call per (position, head) spends about as long on its entry checks and
        // remainder handling as on its 8 FMAs. Here eight positions go at once: eight independent FMA chains keep both
        // FMA pipes busy where one chain would wait out each FMA's latency, and their sums are reduced four at a time.
        // The group's heads take turns on each block of eight keys, which stays in L1 meanwhile.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void ScoresAvx512(float* q, float* k, float* s, int group, int length, int visible, int headDim, float scale)
        {
            var factor = Vector256.Create(scale);
            int p = 0;
            for (; p + 8 <= visible; p += 8)
            {
                float* key = k + (long)p * headDim;
                for (int g = 0; g < group; g++)
                {
                    float* qg = q + g * headDim;
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                    for (int i = 0; i < headDim; i += Vector512<float>.Count)
                    {
                        Vector512<float> x = Vector512.Load(qg + i);
                        a0 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + i), a0);
                        a1 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + headDim + i), a1);
                        a2 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 2 * headDim + i), a2);
                        a3 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 3 * headDim + i), a3);
                        a4 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 4 * headDim + i), a4);
                        a5 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 5 * headDim + i), a5);
                        a6 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 6 * headDim + i), a6);
                        a7 = Avx512F.FusedMultiplyAdd(x, Vector512.Load(key + 7 * headDim + i), a7);
                    }

                    (Vector256.Create(HorizontalSum.Of4(a0, a1, a2, a3), HorizontalSum.Of4(a4, a5, a6, a7)) * factor).Store(s + g * length + p);
                }
            }

            for (; p < visible; p++)
            {
                float* key = k + (long)p * headDim;
                for (int g = 0; g < group; g++)
                {
                    float* qg = q + g * headDim;
                    Vector512<float> acc = default;
                    for (int i = 0; i < headDim; i += Vector512<float>.Count)
                    {
                        acc = Avx512F.FusedMultiplyAdd(Vector512.Load(qg + i), Vector512.Load(key + i), acc);
                    }

                    s[g * length + p] = Vector512.Sum(acc) * scale;
                }
            }
        }

        /// <summary>
        /// o[g] = Σ_p s[g, p] · v[p] for the group's heads. Per block of 64 positions (32 KiB of values at head_dim 128,
        /// read from memory once and kept in L1 for the other heads), each head accumulates 128 elements of o at a time
        /// in eight registers, so o is loaded and stored once per block rather than once per position.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void WeightedSumAvx512(float* v, float* s, float* o, int group, int length, int visible, int headDim)
        {
            const int BlockPositions = 64;
            const int Chunk = 8 * 16; // eight Vector512<float>
            for (int p0 = 0; p0 < visible; p0 += BlockPositions)
            {
                int p1 = Math.Min(visible, p0 + BlockPositions);
                bool first = p0 == 0;
                for (int g = 0; g < group; g++)
                {
                    float* sg = s + g * length;
                    float* og = o + g * headDim;
                    int i = 0;
                    for (; i + Chunk <= headDim; i += Chunk)
                    {
                        float* oi = og + i;
                        Vector512<float> a0 = first ? default : Vector512.Load(oi), a1 = first ? default : Vector512.Load(oi + 16);
                        Vector512<float> a2 = first ? default : Vector512.Load(oi + 32), a3 = first ? default : Vector512.Load(oi + 48);
                        Vector512<float> a4 = first ? default : Vector512.Load(oi + 64), a5 = first ? default : Vector512.Load(oi + 80);
                        Vector512<float> a6 = first ? default : Vector512.Load(oi + 96), a7 = first ? default : Vector512.Load(oi + 112);
                        float* value = v + (long)p0 * headDim + i;
                        for (int p = p0; p < p1; p++, value += headDim)
                        {
                            var weight = Vector512.Create(sg[p]);
                            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(value), weight, a0);
                            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 16), weight, a1);
                            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 32), weight, a2);
                            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 48), weight, a3);
                            a4 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 64), weight, a4);
                            a5 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 80), weight, a5);
                            a6 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 96), weight, a6);
                            a7 = Avx512F.FusedMultiplyAdd(Vector512.Load(value + 112), weight, a7);
                        }

                        a0.Store(oi);
                        a1.Store(oi + 16);
                        a2.Store(oi + 32);
                        a3.Store(oi + 48);
                        a4.Store(oi + 64);
                        a5.Store(oi + 80);
                        a6.Store(oi + 96);
                        a7.Store(oi + 112);
                    }

                    for (; i < headDim; i += Vector512<float>.Count)
                    {
                        Vector512<float> acc = first ? default : Vector512.Load(og + i);
                        float* value = v + (long)p0 * headDim + i;
                        for (int p = p0; p < p1; p++, value += headDim)
                        {
                            acc = Avx512F.FusedMultiplyAdd(Vector512.Load(value), Vector512.Create(sg[p]), acc);
                        }

                        acc.Store(og + i);
                    }
                }
            }
        }
    }
}
