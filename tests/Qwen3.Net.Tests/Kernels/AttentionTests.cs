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
        Attention.Compute(pool, queries, keys, values, tokens, 1, 1, headDim, 0, tokens, output, scores);
        output.AsSpan(0, headDim).ToArray().Should().Equal(values.AsSpan(0, headDim).ToArray(), "the first token attends to itself alone");
    }

    [Fact]
    public void RejectsScratchTooSmall()
    {
        using var pool = new WorkerPool(2);
        var act = () => Attention.Compute(pool, new float[64], new float[64], new float[64], 2, 2, 1, 32, 0, 1, new float[64], new float[1]);
        act.Should().Throw<ArgumentException>();
    }
}
