using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Qwen3.Net.Benchmarks.Kernels;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// The BF16 matrix-vector kernel alone, as the engine calls it (<see cref="MatMul.Multiply(WorkerPool, in WeightMatrix, ReadOnlySpan{float}, Span{float}, int)"/>
/// on a pool, one to a few tokens), over 1 GiB of weights far past the caches, against a plain vector sum of the same
/// bytes on the same threads: how close the kernel reads to the machine's read rate at each token count, apart from
/// the rest of the decode step. Measurements of each kind alternate in every round, so a drifting host shifts all alike.
/// A smaller matrix (held in a cache) is multiplied as many times as 1 GiB takes, which shows the kernel's own rate.
/// </summary>
internal static unsafe class DecodeKernelProbe
{
    public const int DefaultWeightKib = 1 << 20;

    public static void Run(int threads, int[] tokenCounts, int[] columnCounts, int rounds, int weightKib, bool decoding, TextWriter output)
    {
        long weightBytes = weightKib * 1024L;
        int repeats = (int)Math.Max(1, (1L << 30) / weightBytes);
        using var pool = new WorkerPool(threads);
        foreach (int columns in columnCounts)
        {
            int rows = (int)Math.Max(1, weightBytes / 2 / columns);
            using var weights = new BenchmarkWeights(rows, columns);
            int maxTokens = tokenCounts.Max();
            // Cache-line aligned, as the forward pass's activations are.
            float* x = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxTokens * columns * sizeof(float)), 64);
            float* y = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxTokens * rows * sizeof(float)), 64);
            try
            {
                BenchmarkWeights.Input(maxTokens * columns).CopyTo(new Span<float>(x, maxTokens * columns));
                var names = new List<string> { "plain sum" };
                names.AddRange(tokenCounts.Select(Name));

                var samples = names.ToDictionary(n => n, _ => new List<double>());
                for (int round = 0; round < rounds + 1; round++)
                {
                    // Round 0 warms the JIT's final tier and the page tables; it is not counted.
                    double seconds = Sum(pool.ThreadCount, weights, repeats);
                    Record(samples, "plain sum", round, seconds);
                    foreach (int tokens in tokenCounts)
                    {
                        long start = Stopwatch.GetTimestamp();
                        for (int i = 0; i < repeats; i++)
                        {
                            MatMul.Multiply(pool, weights.Matrix, new ReadOnlySpan<float>(x, tokens * columns), new Span<float>(y, tokens * rows), tokens, decoding);
                        }

                        Record(samples, Name(tokens), round, Stopwatch.GetElapsedTime(start).TotalSeconds / repeats);
                    }
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{columns} columns × {rows} rows (BF16, {weights.Bytes >> 10} KiB{(repeats > 1 ? $", {repeats} times a round" : "")}), {threads} thread(s), {rounds} rounds: GB/s best / median"));
                foreach (string name in names)
                {
                    double[] rates = samples[name].Select(s => weights.Bytes / s / 1e9).Order().ToArray();
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-28} {rates[^1],6:F1} / {rates[rates.Length / 2],6:F1}"));
                }
            }
            finally
            {
                NativeMemory.AlignedFree(x);
                NativeMemory.AlignedFree(y);
            }
        }
    }

    private static string Name(int tokens) => $"kernel, {tokens} token{(tokens > 1 ? "s" : "")}";

    private static void Record(Dictionary<string, List<double>> samples, string name, int round, double seconds)
    {
        if (round > 0)
        {
            samples[name].Add(seconds);
        }
    }

    /// <summary>Seconds per plain sum of the weights, <paramref name="repeats"/> sums timed together.</summary>
    private static double Sum(int threads, BenchmarkWeights weights, int repeats) =>
        SimultaneousThreads.Time(threads, t => Enumerable.Range(0, repeats).Sum(_ => ModelKernelProbe.SumShare([weights.Matrix], t, threads)), out _) / repeats;
}
