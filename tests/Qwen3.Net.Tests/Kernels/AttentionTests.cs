using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

public sealed class AttentionTests
{
    [Theory]
    [InlineData(4, 2, 32, 0, 1)]
    [InlineData(4, 2, 32, 0, 7)]
    [InlineData(4, 2, 128, 37, 1)]
    [InlineData(16, 8, 128, 0, 9)]
    [InlineData(16, 8, 128, 300, 1)]
    [InlineData(16, 8, 32, 21, 5)]
    [InlineData(3, 1, 32, 0, 4)]
    [InlineData(3, 1, 128, 100, 3)]
    [InlineData(16, 8, 128, 130, 17)]
    [InlineData(6, 2, 48, 33, 5)]
    [InlineData(4, 2, 24, 5, 3)]
    [InlineData(16, 8, 128, 5, 40)]  // three blocks of query tokens, the last short
    [InlineData(3, 1, 32, 7, 25)]    // a group of three: blocks of ten tokens
    [InlineData(64, 8, 128, 0, 9)]   // a group of eight: blocks of four tokens
    [InlineData(15, 3, 128, 3, 21)]  // a group of five: pairs of query rows that straddle two tokens
    public void MatchesScalarReference(int heads, int kvHeads, int headDim, int start, int tokens)
    {
        int stride = start + tokens + 3; // a cache with spare room, as after doubling
        float[] queries = TestWeights.RandomVector(tokens * heads * headDim, seed: 1);
        float[] keys = TestWeights.RandomVector(kvHeads * stride * headDim, seed: 2);
        float[] values = TestWeights.RandomVector(kvHeads * stride * headDim, seed: 3);
        var expected = new float[tokens * heads * headDim];
        Attention.ComputeScalar(queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, expected);

        // Every path this CPU has, whatever QWEN3NET_KERNELS says; head_dim 24 is not a whole number of zmm vectors.
        KernelPath[] paths = [.. new[] { KernelPath.Portable, KernelPath.Avx2, KernelPath.Avx512 }.Where(KernelPaths.IsSupported)];
        foreach ((int threads, KernelPath path) in new[] { 1, 3 }.SelectMany(n => paths.Select(p => (n, p))))
        {
            using var pool = new WorkerPool(threads);
            var scores = new float[Attention.ScratchLength(threads, heads, kvHeads, start + tokens)];
            float[] actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
            Attention.Compute(pool, queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, actual, scores, path);
            // Outputs are convex combinations of values in [−1, 1]. The logits (|q·k|/√d ≤ √d, here ≤ 11.3) carry float32
            // reassociation error ≤ d·ε·|q||k|/√d ≈ 1e-5 at d = 128, and exp of TensorPrimitives vs MathF differs by ulps,
            // so weights and outputs agree to a few 1e-6; 5e-5 leaves margin without hiding a wrong head or position.
            for (int i = 0; i < expected.Length; i++)
            {
                actual[i].Should().BeApproximately(expected[i], 5e-5f, $"output {i} with {threads} threads on {path}");
            }
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(128)]
    public void Scores_far_above_exp_overflow_give_the_softmax_of_the_definition(int headDim)
    {
        // Queries and keys of norm 40·√d make scores of up to 1600·√d / √d = 1600, far past float32's exp limit (88).
        const int heads = 4, kvHeads = 2, start = 5, tokens = 7;
        int stride = start + tokens;
        float[] queries = [.. TestWeights.RandomVector(tokens * heads * headDim, seed: 11).Select(v => 40f * v)];
        float[] keys = [.. TestWeights.RandomVector(kvHeads * stride * headDim, seed: 12).Select(v => 40f * v)];
        float[] values = TestWeights.RandomVector(kvHeads * stride * headDim, seed: 13);
        var expected = new float[tokens * heads * headDim];
        Attention.ComputeScalar(queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, expected);
        expected.Should().OnlyContain(v => float.IsFinite(v));

        foreach (var path in new[] { KernelPath.Portable, KernelPath.Avx2, KernelPath.Avx512, KernelPath.Scalar }.Where(KernelPaths.IsSupported))
        {
            using var pool = new WorkerPool(2);
            var scores = new float[Attention.ScratchLength(2, heads, kvHeads, stride)];
            var actual = new float[expected.Length];
            Attention.Compute(pool, queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, actual, scores, path);
            for (int i = 0; i < expected.Length; i++)
            {
                // With scores this large the weights are nearly one-hot; rounding of the scores moves them a little more.
                actual[i].Should().BeApproximately(expected[i], 1e-3f, $"output {i} on {path}");
            }
        }
    }

    [Theory]
    [InlineData(16, 8, 128, 0, 70, 32)]   // a prompt over three pages, the last partly filled
    [InlineData(16, 8, 128, 95, 1, 32)]   // one token at the last position of a page
    [InlineData(16, 8, 128, 96, 1, 32)]   // one token at the first position of a page
    [InlineData(16, 8, 128, 100, 37, 64)]
    [InlineData(15, 3, 128, 37, 21, 32)]  // a group of five
    [InlineData(4, 2, 24, 50, 3, 32)]     // head_dim 24: the TensorPrimitives kernel
    public unsafe void MatchesScalarReferenceOverPages(int heads, int kvHeads, int headDim, int start, int tokens, int pagePositions)
    {
        int length = start + tokens;
        int pageCount = (length + pagePositions - 1) / pagePositions;
        int stride = pageCount * pagePositions;
        float[] queries = TestWeights.RandomVector(tokens * heads * headDim, seed: 11);
        float[] keys = TestWeights.RandomVector(kvHeads * stride * headDim, seed: 12);
        float[] values = TestWeights.RandomVector(kvHeads * stride * headDim, seed: 13);
        var expected = new float[tokens * heads * headDim];
        Attention.ComputeScalar(queries, keys, values, stride, heads, kvHeads, headDim, start, tokens, expected);

        // The same cache cut into pages [kvHeads, pagePositions, headDim], each its own pinned array, handed over in
        // position order.
        float[][] Pages(float[] cache) => [.. Enumerable.Range(0, pageCount).Select(page =>
        {
            float[] rows = GC.AllocateArray<float>(kvHeads * pagePositions * headDim, pinned: true);
            for (int h = 0; h < kvHeads; h++)
            {
                cache.AsSpan((h * stride + page * pagePositions) * headDim, pagePositions * headDim)
                    .CopyTo(rows.AsSpan(h * pagePositions * headDim));
            }

            return rows;
        })];
        static nint Address(float[] page)
        {
            fixed (float* p = page)
            {
                return (nint)p;
            }
        }

        float[][] keyPages = Pages(keys), valuePages = Pages(values);
        nint[] keyAddresses = [.. keyPages.Select(Address)], valueAddresses = [.. valuePages.Select(Address)];
        KernelPath[] paths = [.. new[] { KernelPath.Portable, KernelPath.Avx2, KernelPath.Avx512 }.Where(KernelPaths.IsSupported)];
        foreach ((int threads, KernelPath path) in new[] { 1, 3 }.SelectMany(n => paths.Select(p => (n, p))))
        {
            using var pool = new WorkerPool(threads);
            var scores = new float[Attention.ScratchLength(threads, heads, kvHeads, length)];
            float[] actual = Enumerable.Repeat(float.NaN, expected.Length).ToArray();
            Attention.Compute(pool, queries, keyAddresses, valueAddresses, pagePositions, heads, kvHeads, headDim, start, tokens, actual, scores, path);
            for (int i = 0; i < expected.Length; i++)
            {
                actual[i].Should().BeApproximately(expected[i], 5e-5f, $"output {i} with {threads} threads on {path}");
            }
        }

        GC.KeepAlive(keyPages);
        GC.KeepAlive(valuePages);
    }

    [Fact]
    public void RejectsPagesThatSplitBlocksOrHoldTooFewPositions()
    {
        using var pool = new WorkerPool(1);
        float[] page = GC.AllocateArray<float>(48 * 32, pinned: true);
        nint address;
        unsafe
        {
            fixed (float* p = page)
            {
                address = (nint)p;
            }
        }

        var scores = new float[Attention.ScratchLength(1, 1, 1, 96)];
        var output = new float[32];
        var splitBlocks = () => Attention.Compute(pool, new float[32], new[] { address, address }, new[] { address, address }, 24, 1, 1, 32, 40, 1, output, scores, KernelPaths.Default);
        splitBlocks.Should().Throw<ArgumentException>("pages of 24 positions would split blocks of 8 keys and 32 values");
        var tooFew = () => Attention.Compute(pool, new float[32], new[] { address }, new[] { address }, 32, 1, 1, 32, 40, 1, output, scores, KernelPaths.Default);
        tooFew.Should().Throw<ArgumentException>("one page of 32 positions cannot hold 41");
        var nullPage = () => Attention.Compute(pool, new float[32], new[] { address, 0 }, new[] { address, address }, 32, 1, 1, 32, 40, 1, output, scores, KernelPaths.Default);
        nullPage.Should().Throw<ArgumentException>();
        GC.KeepAlive(page);
    }

    [Fact]
    public void EachTokenSeesOnlyEarlierPositions()
    {
        // With one key per position equal to the query, a leak of a later position would change the first token's output.
        const int headDim = 32, tokens = 4;
        float[] queries = TestWeights.RandomVector(tokens * headDim, seed: 5);
        float[] keys = TestWeights.RandomVector(tokens * headDim, seed: 6);
        float[] values = TestWeights.RandomVector(tokens * headDim, seed: 7);
        using var pool = new WorkerPool(2);
        var scores = new float[Attention.ScratchLength(2, 1, 1, tokens)];
        var output = new float[tokens * headDim];
        Attention.Compute(pool, queries, keys, values, tokens, 1, 1, headDim, 0, tokens, output, scores, KernelPaths.Default);
        output.AsSpan(0, headDim).ToArray().Should().Equal(values.AsSpan(0, headDim).ToArray(), "the first token attends to itself alone");
    }

    [Fact]
    public void RejectsScratchTooSmall()
    {
        using var pool = new WorkerPool(2);
        var act = () => Attention.Compute(pool, new float[64], new float[64], new float[64], 2, 2, 1, 32, 0, 1, new float[64], new float[1], KernelPaths.Default);
        act.Should().Throw<ArgumentException>();
    }
}
