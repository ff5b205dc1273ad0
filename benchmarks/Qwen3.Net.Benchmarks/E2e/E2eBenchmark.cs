using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Benchmarks.Checkpoints;
using Qwen3.Net.Benchmarks.Engines;
using Qwen3.Net.Benchmarks.Probes;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// The side-by-side comparison: every engine in its own child process, interleaved (A, B, A, B, ...) so slow drifts of
/// a shared machine hit both engines alike, with the machine's ceilings measured between the runs; every run is
/// printed, then medians, ratios and the fraction of the ceilings each run reached.
/// </summary>
public sealed class E2eBenchmark(
    string modelFolder, int[] threadCounts, int[] promptLengths, int decodeTokens, int rounds, IReadOnlyList<string> engines,
    bool refreshPageCache = false)
{
    public const string ResultMarker = "E2E-RESULT ";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public int Run(TextWriter output)
    {
        var shape = ModelShape.FromConfigJson(modelFolder);
        long bytesPerToken = shape.WeightsReadPerToken * sizeof(ushort);
        output.WriteLine(HostLine());
        output.WriteLine($"Model: {modelFolder} (hidden {shape.HiddenSize}, {shape.NumLayers} layers, {shape.WeightsReadPerToken / 1e9:F3} G matrix weights read per token = {bytesPerToken / 1e9:F2} GB in BF16)");
        output.WriteLine($"Prompts {string.Join(",", promptLengths)} tokens, decode {decodeTokens} tokens, {rounds} interleaved round(s) of {string.Join(", ", engines)}");
        output.WriteLine();

        // What the engines actually read is file pages, so the model files are measured too, next to fresh anonymous
        // memory. The host's bandwidth drifts between runs, so the ceilings are measured again after every run and
        // each run is compared with the mean of the ceilings just before and just after it.
        var safetensors = Directory.GetFiles(modelFolder, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        var gguf = new List<string> { Path.Combine(modelFolder, ModelGenerator.GgufFileName) };
        bool anyLlama = engines.Any(e => e != EngineCatalog.Qwen3Net);
        if (refreshPageCache)
        {
            ModelFilesProbe.Evict(anyLlama ? [.. safetensors, .. gguf] : safetensors);
            output.WriteLine("Page cache refreshed: model files dropped with posix_fadvise(DONTNEED), then read back through a memory map.");
        }

        using var probe = new MemoryBandwidthProbe();
        Ceilings Measure(int threads) => new(
            probe.MeasureGBps(threads),
            FmaPeakProbe.MeasureGflops(threads),
            ModelFilesProbe.MeasureGBps(safetensors, threads),
            anyLlama ? ModelFilesProbe.MeasureGBps(gguf, threads) : double.NaN);

        output.WriteLine($"Ceilings: read bandwidth = {probe.Bytes >> 20} MiB streaming sum of anonymous memory, best of 5; " +
            $"FP32 FMA peak = {FmaPeakProbe.Isa}, best of 3; model files = the same sum over the memory-mapped files, best of 3 after a warm pass.");
        output.WriteLine();

        bool allOk = true;
        foreach (int threads in threadCounts)
        {
            var before = Measure(threads);
            output.WriteLine($"  {threads} thread(s), ceilings at start: {before.Describe(anyLlama)}");
            var runs = new List<MeasuredRun>();
            for (int round = 1; round <= rounds; round++)
            {
                foreach (string engine in engines)
                {
                    var result = RunChild(engine, threads, output);
                    var after = Measure(threads);
                    if (result is null)
                    {
                        allOk = false;
                    }
                    else
                    {
                        runs.Add(new MeasuredRun(result, before, after));
                        output.WriteLine($"  {Row(result.Engine, $"run {round}", result)}");
                    }
                    output.WriteLine($"  {threads} thread(s), ceilings after it: {after.Describe(anyLlama)}");
                    before = after;
                }
            }
            output.WriteLine();
            Report(output, threads, runs, shape, bytesPerToken);
        }
        return allOk ? 0 : 1;
    }

    private EngineRunResult? RunChild(string engine, int threads, TextWriter output)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Under "dotnet Qwen3.Net.Benchmarks.dll" the process is the host; the child needs the assembly again.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(typeof(E2eBenchmark).Assembly.Location);
        }
        foreach (string arg in new[]
        {
            "e2e-one", "--engine", engine, "--model", modelFolder, "--threads", threads.ToString(Inv),
            "--prompt", string.Join(",", promptLengths), "--decode", decodeTokens.ToString(Inv),
        })
        {
            start.ArgumentList.Add(arg);
        }

        using var child = Process.Start(start)!;
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string? line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith(ResultMarker, StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
        {
            output.WriteLine($"  {engine}, {threads} thread(s): child failed with exit code {child.ExitCode}: {stdout.Trim()}");
            return null;
        }
        return JsonSerializer.Deserialize<EngineRunResult>(line[ResultMarker.Length..])!;
    }

    private void Report(TextWriter output, int threads, List<MeasuredRun> runs, ModelShape shape, long bytesPerToken)
    {
        if (runs.Count == 0)
        {
            output.WriteLine($"== {threads} thread(s): no run succeeded ==");
            output.WriteLine();
            return;
        }

        output.WriteLine($"== {threads} thread(s): medians over {rounds} run(s) per engine ==");
        output.WriteLine($"  {Header()}");
        var medians = new Dictionary<string, EngineRunResult>();
        foreach (var group in runs.GroupBy(r => r.Result.Engine))
        {
            var median = MedianOf(group.Select(r => r.Result).ToList());
            medians[group.Key] = median;
            output.WriteLine($"  {Row(group.Key, "median", median)}");
        }

        if (medians.Count == 2 && medians.Keys.ToList() is [var ours, var theirs])
        {
            var a = medians[ours];
            var b = medians[theirs];
            var ratios = new List<string>
            {
                $"load {a.LoadSeconds / b.LoadSeconds:F2}",
                $"TTFT {a.TimeToFirstTokenSeconds / b.TimeToFirstTokenSeconds:F2}",
            };
            for (int p = 0; p < promptLengths.Length; p++)
            {
                ratios.Add($"prefill{promptLengths[p]} {a.PrefillTokensPerSecond[p] / b.PrefillTokensPerSecond[p]:F2}");
            }
            ratios.Add($"decode {a.DecodeTokensPerSecond / b.DecodeTokensPerSecond:F2}");
            ratios.Add($"peak RSS {(double)a.PeakRssBytes / b.PeakRssBytes:F2}");
            output.WriteLine($"  ratio {ours} / {theirs}: {string.Join(", ", ratios)}  (speeds: >1 is {ours} faster; times and RSS: <1 is {ours} better)");
        }

        var boundaries = runs.SelectMany(r => new[] { r.Before, r.After }).ToList();
        output.WriteLine($"  ceilings measured between the runs: read bandwidth {Range(boundaries.Select(c => c.BandwidthGBps))} GB/s " +
            $"= decode ceiling {Range(boundaries.Select(c => c.BandwidthGBps * 1e9 / bytesPerToken), "F2")} tokens/s " +
            $"(BF16 weights of all layers + tied output head per token); FMA peak {Range(boundaries.Select(c => c.FmaGflops))} GFLOP/s");
        output.WriteLine("  shares below: each run against the mean of the ceilings measured just before and just after it, median over runs");
        foreach (var group in runs.GroupBy(r => r.Result.Engine))
        {
            string engine = group.Key;
            double decodeShare = Median(group.Select(r => r.Result.DecodeTokensPerSecond * bytesPerToken / (r.Mean(c => c.BandwidthGBps) * 1e9)));
            var prefillShares = promptLengths.Select((length, p) =>
            {
                // Every layer runs for every prompt token; the output head only for the last one.
                double flops = 2.0 * (shape.NumLayers * shape.LayerMatrixParameters * (double)length + shape.EmbeddingParameters);
                double share = Median(group.Select(r => flops * r.Result.PrefillTokensPerSecond[p] / length / 1e9 / r.Mean(c => c.FmaGflops)));
                return $"prefill{length} {100 * share:F1}% of FMA peak";
            });
            // Memory-mapped engines can go no faster than their mapped file reads; LLamaSharp's default copies the
            // file into anonymous memory, whose ceiling is the read bandwidth.
            Func<Ceilings, double>? files = engine == EngineCatalog.Qwen3Net ? c => c.SafetensorsGBps
                : engine == EngineCatalog.LlamaCppMemoryMapped ? c => c.GgufGBps : null;
            string filesShare = files is null ? "" :
                $" ({100 * Median(group.Select(r => r.Result.DecodeTokensPerSecond * bytesPerToken / (r.Mean(files) * 1e9))):F1}% of its mapped files' read rate)";
            output.WriteLine($"  {engine}: decode {100 * decodeShare:F1}% of bandwidth ceiling{filesShare}; {string.Join("; ", prefillShares)}");
        }
        foreach (var (engine, m) in medians)
        {
            output.WriteLine($"  {engine}: first greedy ids [{string.Join(", ", m.FirstDecodedIds)}]; {m.EngineInfo}");
        }
        output.WriteLine();
    }

    private static string Range(IEnumerable<double> values, string format = "F1")
    {
        var list = values.ToList();
        return $"{list.Min().ToString(format, Inv)}–{list.Max().ToString(format, Inv)}";
    }

    /// <summary>What the machine could do at one moment, for one thread count.</summary>
    private sealed record Ceilings(double BandwidthGBps, double FmaGflops, double SafetensorsGBps, double GgufGBps)
    {
        public string Describe(bool withGguf) =>
            string.Create(Inv, $"read bandwidth {BandwidthGBps:F1} GB/s, FMA peak {FmaGflops:F1} GFLOP/s, safetensors files {SafetensorsGBps:F1} GB/s") +
            (withGguf ? string.Create(Inv, $", GGUF file {GgufGBps:F1} GB/s") : "");
    }

    /// <summary>One engine run with the ceilings measured just before and just after it.</summary>
    private sealed record MeasuredRun(EngineRunResult Result, Ceilings Before, Ceilings After)
    {
        public double Mean(Func<Ceilings, double> figure) => (figure(Before) + figure(After)) / 2;
    }

    private string Header() =>
        $"{"engine",-10} {"run",-7} {"load s",7} {"TTFT s",7} " +
        string.Join(" ", promptLengths.Select(l => $"{"pp" + l + " t/s",10}")) +
        $" {"tg" + decodeTokens + " t/s",10} {"peak RSS MiB",12}";

    private string Row(string engine, string run, EngineRunResult r) =>
        $"{engine,-10} {run,-7} {r.LoadSeconds,7:F2} {r.TimeToFirstTokenSeconds,7:F2} " +
        string.Join(" ", r.PrefillTokensPerSecond.Select(v => $"{v,10:F1}")) +
        $" {r.DecodeTokensPerSecond,10:F2} {r.PeakRssBytes / (1024.0 * 1024.0),12:F0}";

    /// <summary>Each figure's median on its own (the median run for one figure need not be the median for another).</summary>
    private static EngineRunResult MedianOf(List<EngineRunResult> runs) => runs[0] with
    {
        LoadSeconds = Median(runs.Select(r => r.LoadSeconds)),
        TimeToFirstTokenSeconds = Median(runs.Select(r => r.TimeToFirstTokenSeconds)),
        PrefillTokensPerSecond = Enumerable.Range(0, runs[0].PrefillTokensPerSecond.Length)
            .Select(p => Median(runs.Select(r => r.PrefillTokensPerSecond[p]))).ToArray(),
        DecodeTokensPerSecond = Median(runs.Select(r => r.DecodeTokensPerSecond)),
        PeakRssBytes = (long)Median(runs.Select(r => (double)r.PeakRssBytes)),
    };

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    internal static string CpuModel() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown"
            : "unknown";

    /// <summary>
    /// The header line: CPU, cores, runtime, time, and a warning when the kernel's DAMON monitor runs. On the
    /// development VMs it samples every page's access bit each 0.5 s, which stalled one of the two cores for 35–65 ms
    /// each time, a slow step every half second for both engines (docs/benchmarks.md).
    /// </summary>
    internal static string HostLine()
    {
        string line = $"CPU: {CpuModel()}, {Environment.ProcessorCount} logical cores; .NET {Environment.Version}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC";
        const string damon = "/sys/kernel/mm/damon/admin/kdamonds";
        try
        {
            if (Directory.Exists(damon) && Directory.EnumerateDirectories(damon).Any(d => File.Exists(Path.Combine(d, "state")) && File.ReadAllText(Path.Combine(d, "state")).Trim() == "on"))
            {
                line += $"\n  note: the kernel's DAMON monitor is on ({damon}/*/state): expect a slow step every sample interval";
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Unreadable: nothing to say.
        }

        return line;
    }
}
