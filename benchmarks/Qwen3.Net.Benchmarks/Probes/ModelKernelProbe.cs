using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Qwen3.Net.Benchmarks.Kernels;
using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// The matrix-vector kernels alone on a real model file's layer matrices, in their stored format (BF16 from a
/// safetensors folder, or a GGUF's block formats), mapped as the engine maps them: every matrix of every layer
/// multiplied once per pass, as a decode step does, against a plain sum of the same mapped bytes on the same threads,
/// alternated each round. Unlike <see cref="DecodeKernelProbe"/> it reads the file's own page-cache pages, whose size
/// changes the read rate (docs/benchmarks.md, "The page size of the page cache").
/// </summary>
internal static unsafe class ModelKernelProbe
{
    /// <summary>
    /// Which layer matrices to multiply: those of one tensor type (null: all), the first <paramref name="Matrices"/> of
    /// them by name, and of each the first <paramref name="Rows"/> rows (a few hundred keep a matrix in L2); and whether
    /// to print every round's rate, where a change between rounds (the JIT's tiers, the host) shows; and whether the
    /// tokens are a decode step's (one per sequence), which may take the matrix-vector kernels past four tokens where a
    /// prompt's take the tile (MatMul.DecodeMaxTokens).
    /// </summary>
    public sealed record Selection(string? Type, int Matrices, int Rows, bool EachRound, bool Decoding);

    public static void Run(string model, int threads, int[] tokenCounts, int rounds, bool refreshPageCache, Selection selection, TextWriter output)
    {
        bool gguf = model.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);
        Qwen3Gguf? file = gguf ? Qwen3Gguf.Open(model) : null;
        using TensorStore store = file?.Store ?? TensorStore.Open(model);
        if (refreshPageCache)
        {
            PageCache.Refresh(store.FilePaths);
        }

        WeightMatrix[] matrices = store.TensorNames
            .Where(n => n.Contains(".layers.", StringComparison.Ordinal) && store.Get(n).Shape.Length == 2)
            .Order(StringComparer.Ordinal)
            .Select(n => WeightMatrix.From(store.Get(n)))
            .Where(m => selection.Type is null || string.Equals(m.Type.ToString(), selection.Type, StringComparison.OrdinalIgnoreCase))
            .Take(selection.Matrices)
            .Select(m => m.Rows > selection.Rows ? new WeightMatrix(m.Data, m.Type, selection.Rows, m.Columns) : m)
            .ToArray();
        if (matrices.Length == 0)
        {
            throw new ArgumentException($"{Path.GetFileName(model)} has no layer matrices of type {selection.Type}.");
        }

        long bytes = matrices.Sum(m => m.Rows * m.RowStride);
        int maxColumns = matrices.Max(m => m.Columns), maxRows = matrices.Max(m => m.Rows), maxTokens = tokenCounts.Max();
        using var pool = new WorkerPool(threads);
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxTokens * maxColumns * sizeof(float)), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxTokens * maxRows * sizeof(float)), 64);
        try
        {
            BenchmarkWeights.Input(maxTokens * maxColumns).CopyTo(new Span<float>(x, maxTokens * maxColumns));
            var names = new List<string> { "plain sum" };
            names.AddRange(tokenCounts.Select(t => $"kernel, {t} token{(t > 1 ? "s" : "")}"));
            var samples = names.ToDictionary(n => n, _ => new List<double>());
            for (int round = 0; round < rounds + 1; round++)
            {
                // Round 0 warms the JIT's final tier and faults the pages in; it is not counted.
                double seconds = SimultaneousThreads.Time(threads, t => SumShare(matrices, t, threads), out _);
                if (round > 0)
                {
                    samples["plain sum"].Add(seconds);
                }

                for (int i = 0; i < tokenCounts.Length; i++)
                {
                    int tokens = tokenCounts[i];
                    long start = Stopwatch.GetTimestamp();
                    foreach (WeightMatrix w in matrices)
                    {
                        MatMul.Multiply(pool, w, new ReadOnlySpan<float>(x, tokens * w.Columns), new Span<float>(y, tokens * w.Rows), tokens, selection.Decoding);
                    }

                    if (round > 0)
                    {
                        samples[names[i + 1]].Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                    }
                }
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Path.GetFileName(model)}: {matrices.Length} layer matrices ({string.Join(", ", matrices.Select(m => m.Type).Distinct())}), {bytes / 1e6:F1} MB, {threads} thread(s), {rounds} rounds: GB/s best / median"));
            foreach (string name in names)
            {
                double[] rates = samples[name].Select(s => bytes / s / 1e9).Order().ToArray();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-28} {rates[^1],6:F2} / {rates[rates.Length / 2],6:F2}"));
                if (selection.EachRound)
                {
                    output.WriteLine("    rounds: " + string.Join(" ", samples[name].Select(t => (bytes / t / 1e9).ToString("F1", CultureInfo.InvariantCulture))));
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(x);
            NativeMemory.AlignedFree(y);
        }
    }

    /// <summary>Thread <paramref name="t"/>'s share of every matrix's bytes, summed in order as the kernels read them.</summary>
    internal static double SumShare(WeightMatrix[] matrices, int t, int threads)
    {
        double total = 0;
        foreach (WeightMatrix w in matrices)
        {
            long floats = w.Rows * w.RowStride / sizeof(float);
            long per = floats / threads / 64 * 64;
            long count = t == threads - 1 ? floats - t * per : per;
            total += MemoryBandwidthProbe.Sum((float*)w.Data + t * per, count);
        }

        return total;
    }
}
