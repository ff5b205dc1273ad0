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
/// </summary>
internal static unsafe class DecodeKernelProbe
{
    private const long WeightBytes = 1L << 30;

    public static void Run(int threads, int[] tokenCounts, int[] columnCounts, int rounds, TextWriter output)
    {
        using var pool = new WorkerPool(threads);
        foreach (int columns in columnCounts)
        {
            int rows = (int)(WeightBytes / 2 / columns);
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
                    double seconds = SumOnce(pool.ThreadCount, weights);
                    Record(samples, "plain sum", round, seconds);
                    foreach (int tokens in tokenCounts)
                    {
                        long start = Stopwatch.GetTimestamp();
                        MatMul.Multiply(pool, weights.Matrix, new ReadOnlySpan<float>(x, tokens * columns), new Span<float>(y, tokens * rows), tokens);
                        Record(samples, Name(tokens), round, Stopwatch.GetElapsedTime(start).TotalSeconds);
                    }
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{columns} columns × {rows} rows (BF16, {WeightBytes >> 20} MiB), {threads} thread(s), {rounds} rounds: GB/s best / median"));
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

    private static double SumOnce(int threads, BenchmarkWeights weights) =>
        SimultaneousThreads.Time(threads, t => ModelKernelProbe.SumShare([weights.Matrix], t, threads), out _);
}
