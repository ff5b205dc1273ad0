using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Text.Json;
using System.Text.RegularExpressions;
using Qwen3.Net.Benchmarks.Engines;
using Qwen3.Net.Benchmarks.Probes;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>One concurrent run of Qwen3.Net: N streams prefilled together, then decoded together.</summary>
public sealed record ConcurrentResult
{
    public int Streams { get; init; }
    public int Threads { get; init; }
    public double PrefillTokensPerSecond { get; init; }                 // all streams' prompt tokens / prefill wall time
    public double DecodeTokensPerSecond { get; init; }                  // all streams' decoded tokens / decode wall time
    public double TimeToFirstTokenP50 { get; init; }
    public double TimeToFirstTokenP99 { get; init; }
    public double InterTokenP50 { get; init; }
    public double InterTokenP99 { get; init; }
    public long PeakRssBytes { get; init; }
    public double LoadSeconds { get; init; }                           // Qwen3Model.Load, panels packed included
    public double? InterferenceStepP99Ratio { get; init; }               // p99 inter-token latency while a long prompt arrives / solo median
}

/// <summary>
/// Aggregate throughput of many conversations on one model, as <c>llama-batched-bench</c> measures it: N sequences with
/// prompts of their own are prefilled at once (PP), then decode together (TG); Qwen3.Net's scheduler batches them
/// through its public API only (one context and one thread per stream). Side by side with native llama.cpp's
/// <c>llama-batched-bench</c> (same GGUF, same threads), interleaved per stream count.
/// </summary>
public static class ConcurrentBenchmark
{
    public const string ResultMarker = "CONCURRENT-RESULT ";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Runs in the child process: one stream count, printed as one JSON line.</summary>
    public static ConcurrentResult Measure(string modelFolder, int threads, int streams, int promptTokens, int decodeTokens, int interference, int? chunk = null, bool refreshPageCache = false, bool packedWeights = false)
    {
        var options = new Qwen3ModelOptions { ThreadCount = threads, RefreshPageCache = refreshPageCache, PackedWeights = packedWeights };
        long loadStart = Stopwatch.GetTimestamp();
        using var model = Qwen3Model.Load(modelFolder, chunk is { } tokens ? options with { InterleavedPrefillTokens = tokens } : options);
        double loadSeconds = Stopwatch.GetElapsedTime(loadStart).TotalSeconds;
        Warm(model, streams, promptTokens, decodeTokens);
        var (ttft, gaps, prefillSeconds, decodeSeconds) = RunStreams(model, streams, promptTokens, decodeTokens, seed: 1000);
        var allGaps = Pooled(gaps);
        var sortedTtft = ttft.Order().ToArray();
        return new ConcurrentResult
        {
            Streams = streams,
            Threads = threads,
            PrefillTokensPerSecond = streams * promptTokens / prefillSeconds,
            DecodeTokensPerSecond = streams * decodeTokens / decodeSeconds,
            TimeToFirstTokenP50 = Percentile(sortedTtft, 0.50),
            TimeToFirstTokenP99 = Percentile(sortedTtft, 0.99),
            InterTokenP50 = Percentile(allGaps, 0.50),
            InterTokenP99 = Percentile(allGaps, 0.99),
            PeakRssBytes = ProcessMemory.PeakResidentBytes(),
            LoadSeconds = loadSeconds,
            InterferenceStepP99Ratio = interference > 0 ? MeasureInterference(model, streams, promptTokens, decodeTokens, interference) : null,
        };
    }

    /// <summary>
    /// N streams on contexts of their own: each prefills its prompt (seeded from <paramref name="seed"/>, so no two runs
    /// share a prefix), then all decode together; times to first token, each stream's inter-token gaps, and the prefill
    /// and decode wall times. <paramref name="beforeToken"/> is called with the stream and token index before each step.
    /// </summary>
    private static (double[] Ttft, double[][] Gaps, double PrefillSeconds, double DecodeSeconds) RunStreams(
        Qwen3Model model, int streams, int promptTokens, int decodeTokens, ulong seed, Action<int, int>? beforeToken = null)
    {
        var contexts = Enumerable.Range(0, streams).Select(_ => model.CreateContext(promptTokens + decodeTokens + 1)).ToArray();
        var ttft = new double[streams];
        var gaps = new double[streams][];
        long decodeStart = 0, decodeEnd = 0;
        using var prefillDone = new Barrier(streams, _ => decodeStart = Stopwatch.GetTimestamp());
        using var decodeDone = new Barrier(streams, _ => decodeEnd = Stopwatch.GetTimestamp());
        long start = Stopwatch.GetTimestamp();
        Parallel.For(0, streams, new ParallelOptions { MaxDegreeOfParallelism = streams }, s =>
        {
            var ctx = contexts[s];
            int next = Greedy.ArgMax(ctx.Evaluate(BenchmarkPrompt.Create(promptTokens, seed: seed + (ulong)s)));
            ttft[s] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            prefillDone.SignalAndWait();
            gaps[s] = new double[decodeTokens];
            long last = Stopwatch.GetTimestamp();
            for (int i = 0; i < decodeTokens; i++)
            {
                beforeToken?.Invoke(s, i);
                next = Greedy.ArgMax(ctx.Evaluate([next]));
                long now = Stopwatch.GetTimestamp();
                gaps[s][i] = Stopwatch.GetElapsedTime(last, now).TotalSeconds;
                last = now;
            }

            decodeDone.SignalAndWait();
        });

        foreach (var ctx in contexts)
        {
            ctx.Dispose();
        }

        return (ttft, gaps, Stopwatch.GetElapsedTime(start, decodeStart).TotalSeconds, Stopwatch.GetElapsedTime(decodeStart, decodeEnd).TotalSeconds);
    }

    /// <summary>
    /// Warm-up, so neither the JIT nor first-touch memory is in the figures, as llama.cpp's KV cache is allocated and
    /// its code compiled before it measures: one context's prompt and steps of one to four tokens (the matrix-vector
    /// kernels that decoding streams take), then the whole run once on other prompts, then a wait until the JIT has
    /// compiled nothing for half a second. Without the rehearsal and the wait, the Tier-1 compilations of the engine's
    /// per-step code (several hundred) ran on the workers' cores during the measured decode, and the second KV page of
    /// every stream was faulted in there (docs/benchmarks.md); a server pays both once per process.
    /// </summary>
    private static void Warm(Qwen3Model model, int streams, int promptTokens, int decodeTokens)
    {
        using (var warm = model.CreateContext(64))
        {
            Greedy.ArgMax(warm.Evaluate(BenchmarkPrompt.Create(32, seed: 999)));
            for (int count = 1; count <= 4; count++)
            {
                warm.Evaluate(BenchmarkPrompt.Create(count, seed: 998));
            }
        }

        RunStreams(model, streams, promptTokens, decodeTokens, seed: 500);

        var quiet = TimeSpan.FromMilliseconds(500);
        long deadline = Stopwatch.GetTimestamp() + 20 * Stopwatch.Frequency;
        long compiled = JitInfo.GetCompiledMethodCount();
        long since = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(since) < quiet && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Sleep(50); // polling the JIT's count: there is no event for "tiering done"
            long now = JitInfo.GetCompiledMethodCount();
            if (now != compiled)
            {
                (compiled, since) = (now, Stopwatch.GetTimestamp());
            }
        }
    }

    /// <summary>
    /// <paramref name="streams"/> streams decode together, then again while a prompt of <paramref name="interference"/>
    /// tokens arrives after the first stream's 16th token: the ratio of their p99 inter-token latency then (all streams'
    /// gaps pooled) to their median step time without it.
    /// </summary>
    private static double MeasureInterference(Qwen3Model model, int streams, int promptTokens, int decodeTokens, int interference)
    {
        double solo = Percentile(Pooled(RunStreams(model, streams, promptTokens, decodeTokens, seed: 2000).Gaps), 0.5);
        Task? longPrompt = null;
        var disturbed = RunStreams(model, streams, promptTokens, decodeTokens, seed: 2500, beforeToken: (stream, token) =>
        {
            if (stream == 0 && token == 16)
            {
                longPrompt = Task.Run(() =>
                {
                    using var ctx = model.CreateContext(interference + 1);
                    ctx.Evaluate(BenchmarkPrompt.Create(interference, seed: 3000));
                });
            }
        }).Gaps;
        longPrompt?.Wait();
        return Percentile(Pooled(disturbed), 0.99) / solo;
    }

    /// <summary>All streams' gaps in one sorted array, for percentiles.</summary>
    private static double[] Pooled(double[][] gaps) => gaps.SelectMany(g => g).Order().ToArray();

    /// <summary>The parent: interleaves Qwen3.Net (child process) and llama-batched-bench per stream count and round.</summary>
    public static int Run(string modelFolder, int threads, int[] streams, int promptTokens, int decodeTokens, int rounds, int interference, string? llamaBin, bool refreshPageCache, bool packedWeights, TextWriter output)
    {
        output.WriteLine(E2eBenchmark.HostLine());
        output.WriteLine($"Model: {modelFolder}; {threads} thread(s); prompt {promptTokens} tokens per stream, decode {decodeTokens}; {rounds} interleaved round(s){(packedWeights ? "; PackedWeights" : "")}");
        output.WriteLine($"llama.cpp: {(llamaBin is null ? "not run (no --llama-bin)" : Path.Combine(llamaBin, "llama-batched-bench"))}");
        var ours = new Dictionary<int, List<ConcurrentResult>>();
        var theirs = new Dictionary<int, List<(double Pp, double Tg)>>();
        for (int round = 1; round <= rounds; round++)
        {
            foreach (int n in streams)
            {
                if (refreshPageCache)
                {
                    var files = ModelFiles(modelFolder, llamaBin is not null);
                    double gbps = RefreshPageCache(files, threads);
                    output.WriteLine(string.Create(Inv, $"  page cache refreshed ({files.Count} files dropped and read back through a map, then {gbps:F1} GB/s)"));
                }

                var result = RunChild(modelFolder, threads, n, promptTokens, decodeTokens, n == 1 ? interference : 0, packedWeights);
                if (result is not null)
                {
                    (ours.TryGetValue(n, out var list) ? list : ours[n] = []).Add(result);
                    string disturbed = result.InterferenceStepP99Ratio is { } ratio
                        ? string.Create(Inv, $"  p99 step while a {interference}-token prompt arrives = {ratio:F2}x solo median")
                        : "";
                    output.WriteLine(string.Create(Inv,
                        $"  round {round} qwen3net  N={n}: PP {result.PrefillTokensPerSecond,7:F1} t/s  TG {result.DecodeTokensPerSecond,6:F2} t/s  TTFT p50/p99 {result.TimeToFirstTokenP50:F2}/{result.TimeToFirstTokenP99:F2} s  ITL p50/p99 {result.InterTokenP50 * 1000:F0}/{result.InterTokenP99 * 1000:F0} ms  RSS {result.PeakRssBytes >> 20} MiB  load {result.LoadSeconds:F1} s{disturbed}"));
                }
                else
                {
                    output.WriteLine($"  round {round} qwen3net  N={n}: failed");
                }

                if (llamaBin is not null)
                {
                    var row = RunLlamaBatchedBench(llamaBin, modelFolder, threads, n, promptTokens, decodeTokens, output);
                    if (row is { } r)
                    {
                        (theirs.TryGetValue(n, out var list) ? list : theirs[n] = []).Add(r);
                        output.WriteLine(string.Create(Inv, $"  round {round} llama.cpp N={n}: PP {r.Pp,7:F1} t/s  TG {r.Tg,6:F2} t/s"));
                    }
                }
            }
        }

        output.WriteLine();
        output.WriteLine("== medians ==");
        double? oneStream = ours.TryGetValue(1, out var single) ? Median(single.Select(r => r.DecodeTokensPerSecond)) : null;
        foreach (int n in streams)
        {
            if (!ours.TryGetValue(n, out var runs))
            {
                continue;
            }

            double tg = Median(runs.Select(r => r.DecodeTokensPerSecond));
            double pp = Median(runs.Select(r => r.PrefillTokensPerSecond));
            string scaling = oneStream is { } one ? string.Create(Inv, $"{tg / one:F2}x one stream") : "";
            string versus = theirs.TryGetValue(n, out var peer)
                ? string.Create(Inv, $"  llama.cpp PP {Median(peer.Select(p => p.Pp)):F1} TG {Median(peer.Select(p => p.Tg)):F2} -> TG {tg / Median(peer.Select(p => p.Tg)):F2}x, PP {pp / Median(peer.Select(p => p.Pp)):F2}x")
                : "";
            output.WriteLine(string.Create(Inv,
                $"  N={n}: qwen3net PP {pp:F1} TG {tg:F2} t/s ({scaling}), ITL p99 {Median(runs.Select(r => r.InterTokenP99)) * 1000:F0} ms, TTFT p99 {Median(runs.Select(r => r.TimeToFirstTokenP99)):F2} s, RSS {runs.Max(r => r.PeakRssBytes) >> 20} MiB{versus}"));
        }

        return 0;
    }

    internal static ConcurrentResult? RunChild(string modelFolder, int threads, int streams, int promptTokens, int decodeTokens, int interference, bool packedWeights = false)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(typeof(ConcurrentBenchmark).Assembly.Location);
        }

        foreach (string arg in new[]
        {
            "concurrent-one", "--model", modelFolder, "--threads", threads.ToString(Inv), "--streams", streams.ToString(Inv),
            "--prompt", promptTokens.ToString(Inv), "--decode", decodeTokens.ToString(Inv), "--interference", interference.ToString(Inv),
        })
        {
            start.ArgumentList.Add(arg);
        }

        if (packedWeights)
        {
            start.ArgumentList.Add("--packed-weights");
        }

        using var child = Process.Start(start)!;
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string? line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith(ResultMarker, StringComparison.Ordinal));
        return child.ExitCode == 0 && line is not null ? JsonSerializer.Deserialize<ConcurrentResult>(line[ResultMarker.Length..]) : null;
    }

    /// <summary>llama-batched-bench with N separate prompts (no shared prompt), its PP and TG speeds from the table row.</summary>
    private static (double Pp, double Tg)? RunLlamaBatchedBench(string bin, string modelFolder, int threads, int streams, int promptTokens, int decodeTokens, TextWriter output)
    {
        var start = new ProcessStartInfo(Path.Combine(bin, "llama-batched-bench")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            "-m", LlamaModelFile(modelFolder), "-t", threads.ToString(Inv), "-tb", threads.ToString(Inv),
            "-c", (streams * (promptTokens + decodeTokens) + 64).ToString(Inv), "-b", "2048", "-ub", "512",
            "-npp", promptTokens.ToString(Inv), "-ntg", decodeTokens.ToString(Inv), "-npl", streams.ToString(Inv),
        })
        {
            start.ArgumentList.Add(arg);
        }

        using var child = Process.Start(start)!;
        var stderr = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        // |    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
        var row = stdout.Split('\n').Select(l => l.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(cells => cells.Length >= 8 && cells[0] == promptTokens.ToString(Inv) && cells[2] == streams.ToString(Inv));
        if (child.ExitCode != 0 || row is null)
        {
            output.WriteLine($"  llama-batched-bench failed (exit {child.ExitCode}): {stderr.Result.Split('\n').LastOrDefault(l => l.Length > 0)}");
            return null;
        }

        return (double.Parse(row[5], Inv), double.Parse(row[7], Inv));
    }

    /// <summary>The files the engines read: the model's (its safetensors, or the .gguf given) and llama.cpp's GGUF if it runs.</summary>
    public static List<string> ModelFiles(string model, bool withLlama)
    {
        var files = model.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)
            ? [model]
            : Directory.GetFiles(model, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        if (withLlama && !files.Contains(LlamaModelFile(model)))
        {
            files.Add(LlamaModelFile(model));
        }

        return files;
    }

    /// <summary>
    /// Drops <paramref name="files"/> from the page cache and reads them back through a map, so both engines read pages
    /// of the same kind: on the development VM's kernel (6.18, ext4) a file written recently sits in 4 KiB pages, and
    /// read back it comes in large folios mapped with 2 MB entries, on which one stream decoded 40% faster
    /// (docs/benchmarks.md). Returns the files' read rate after the refresh, GB/s.
    /// </summary>
    public static double RefreshPageCache(IReadOnlyList<string> files, int threads)
    {
        ModelFilesProbe.Evict(files);
        return ModelFilesProbe.MeasureGBps(files, threads, repetitions: 1);
    }

    /// <summary>A <c>.gguf</c> model path runs both engines on that file; a folder gives llama.cpp its BF16 GGUF.</summary>
    private static string LlamaModelFile(string model) =>
        model.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? model : Path.Combine(model, Checkpoints.ModelGenerator.GgufFileName);

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
