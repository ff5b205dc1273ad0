using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

public sealed class RmsNormAndRopeTests
{
    private static float[] Values(int length, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 4 - 2))];
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(5, 129)]
    [InlineData(2, 2048)]
    public void RmsNorm_matches_its_scalar_reference(int rows, int size)
    {
        float[] x = Values(rows * size, 1), weight = Values(size, 2);
        var expected = new float[x.Length];
        var actual = new float[x.Length];
        RmsNorm.ApplyScalar(x, weight, 1e-6f, expected);
        RmsNorm.Apply(x, weight, 1e-6f, actual);
        for (int i = 0; i < x.Length; i++)
        {
            actual[i].Should().BeApproximately(expected[i], 1e-5f * (1 + Math.Abs(expected[i])), $"element {i}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RmsNorm_shared_out_gives_the_same_bits_as_on_one_thread(int threads)
    {
        const int rows = 517, size = 136; // 70 312 values: enough to be shared out
        using var pool = new WorkerPool(threads);
        pool.WorthSharing(rows * size).Should().Be(threads > 1);
        float[] x = Values(rows * size, 3), weight = Values(size, 4);
        var expected = new float[x.Length];
        var actual = new float[x.Length];
        RmsNorm.Apply(x, weight, 1e-6f, expected);
        RmsNorm.Apply(pool, x, weight, 1e-6f, actual);
        actual.Should().Equal(expected);

        x.CopyTo(actual);
        RmsNorm.Apply(pool, actual, weight, 1e-6f, actual);
        actual.Should().Equal(expected, "in place, as the per-head norms of q and k are applied");
    }

    [Fact]
    public void RmsNorm_rejects_a_length_that_is_not_whole_rows()
    {
        using var pool = new WorkerPool(2);
        var partial = () => RmsNorm.Apply(pool, new float[70_000], new float[128], 1e-6f, new float[70_000]);
        partial.Should().Throw<ArgumentException>();
    }

    [Theory]
    [InlineData(1, 3, 2, 1)]
    [InlineData(2, 7, 3, 18)]
    [InlineData(2, 517, 3, 48)]
    [InlineData(3, 300, 2, 128)]
    public void Rope_rotates_each_pair_by_its_angle_and_shares_tokens_out_exactly(int threads, int tokens, int heads, int halfDim)
    {
        int headDim = 2 * halfDim, width = heads * headDim;
        using var pool = new WorkerPool(threads);
        float[] x = Values(tokens * width, 5);
        float[] angles = Values(tokens * halfDim, 6);
        float[] cos = [.. angles.Select(a => MathF.Cos(a))], sin = [.. angles.Select(a => MathF.Sin(a))];

        float[] actual = (float[])x.Clone();
        Rope.Apply(pool, actual, tokens, headDim, cos, sin);

        for (int t = 0; t < tokens; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < halfDim; i++)
                {
                    int a = t * width + h * headDim + i, b = a + halfDim;
                    double c = cos[t * halfDim + i], s = sin[t * halfDim + i];
                    actual[a].Should().BeApproximately((float)(x[a] * c - x[b] * s), 1e-5f, $"token {t}, head {h}, dimension {i}");
                    actual[b].Should().BeApproximately((float)(x[b] * c + x[a] * s), 1e-5f, $"token {t}, head {h}, dimension {i + halfDim}");
                }
            }
        }

        float[] oneThread = (float[])x.Clone();
        for (int t = 0; t < tokens; t++)
        {
            Rope.Apply(oneThread.AsSpan(t * width, width), headDim, cos.AsSpan(t * halfDim, halfDim), sin.AsSpan(t * halfDim, halfDim));
        }

        actual.Should().Equal(oneThread);
    }

    [Fact]
    public void Rope_rejects_too_few_angles_or_partial_heads()
    {
        using var pool = new WorkerPool(2);
        var fewAngles = () => Rope.Apply(pool, new float[4 * 16], 4, 16, new float[31], new float[32]);
        fewAngles.Should().Throw<ArgumentException>();
        var partialHead = () => Rope.Apply(pool, new float[4 * 20], 4, 16, new float[32], new float[32]);
        partialHead.Should().Throw<ArgumentException>();
    }
}
