using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Benchmarks.Checkpoints;
using Qwen3.Net.Benchmarks.Engines;
using Qwen3.Net.Benchmarks.Probes;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// The side-by-side comparison: machine ceilings first, then every engine in its own child process, interleaved
/// (A, B, A, B, ...) so slow drifts of a shared machine hit both engines alike; every run is printed, then medians,
/// ratios and the fraction of the ceilings reached.
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
        output.WriteLine($"CPU: {CpuModel()}, {Environment.ProcessorCount} logical cores; .NET {Environment.Version}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        output.WriteLine($"Model: {modelFolder} (hidden {shape.HiddenSize}, {shape.NumLayers} layers, {shape.WeightsReadPerToken / 1e9:F3} G matrix weights read per token = {bytesPerToken / 1e9:F2} GB in BF16)");
        output.WriteLine($"Prompts {string.Join(",", promptLengths)} tokens, decode {decodeTokens} tokens, {rounds} interleaved round(s) of {string.Join(", ", engines)}");
        output.WriteLine();

        var bandwidth = new Dictionary<int, double>();
        var fma = new Dictionary<int, double>();
        using (var probe = new MemoryBandwidthProbe())
        {
            foreach (int t in threadCounts)
            {
                bandwidth[t] = probe.MeasureGBps(t);
                fma[t] = FmaPeakProbe.MeasureGflops(t);
                output.WriteLine($"Machine ceilings, {t} thread(s): read bandwidth {bandwidth[t]:F1} GB/s ({probe.Bytes >> 20} MiB streaming sum, best of 5), " +
                    $"FP32 FMA peak {fma[t]:F1} GFLOP/s ({FmaPeakProbe.Isa}, best of 3)");
            }
        }

        // What the engines actually read: the ceilings above are fresh anonymous memory, the engines read file pages.
        var safetensors = Directory.GetFiles(modelFolder, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        var gguf = new List<string> { Path.Combine(modelFolder, ModelGenerator.GgufFileName) };
        bool anyLlama = engines.Any(e => e != EngineCatalog.Qwen3Net);
        if (refreshPageCache)
        {
            ModelFilesProbe.Evict(anyLlama ? [.. safetensors, .. gguf] : safetensors);
            output.WriteLine("Page cache refreshed: model files dropped with posix_fadvise(DONTNEED), then read back through a memory map.");
        }
        var filesGBps = new Dictionary<int, (double Safetensors, double Gguf)>();
        foreach (int t in threadCounts)
        {
            filesGBps[t] = (ModelFilesProbe.MeasureGBps(safetensors, t), anyLlama ? ModelFilesProbe.MeasureGBps(gguf, t) : double.NaN);
            string ggufFigure = anyLlama ? $", GGUF {filesGBps[t].Gguf:F1} GB/s" : "";
            output.WriteLine($"Model files memory-mapped, {t} thread(s): safetensors {filesGBps[t].Safetensors:F1} GB/s{ggufFigure} (streaming sum, best of 3 after a warm pass)");
        }
        output.WriteLine();

        bool allOk = true;
        foreach (int threads in threadCounts)
        {
            var results = new List<EngineRunResult>();
            for (int round = 1; round <= rounds; round++)
            {
                foreach (string engine in engines)
                {
                    var result = RunChild(engine, threads, output);
                    if (result is null)
                    {
                        allOk = false;
                        continue;
                    }
                    results.Add(result);
                    output.WriteLine($"  {Row(result.Engine, $"run {round}", result)}");
                }
            }
            output.WriteLine();
            Report(output, threads, results, bandwidth[threads], filesGBps[threads], fma[threads], shape, bytesPerToken);
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

    private void Report(TextWriter output, int threads, List<EngineRunResult> results, double bandwidthGBps,
        (double Safetensors, double Gguf) filesGBps, double fmaGflops,
        ModelShape shape, long bytesPerToken)
    {
        output.WriteLine($"== {threads} thread(s): medians over {rounds} run(s) per engine ==");
        output.WriteLine($"  {Header()}");
        var medians = new Dictionary<string, EngineRunResult>();
        foreach (var group in results.GroupBy(r => r.Engine))
        {
            var median = MedianOf(group.ToList());
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

        double decodeCeiling = bandwidthGBps * 1e9 / bytesPerToken;
        output.WriteLine($"  decode ceiling at {bandwidthGBps:F1} GB/s: {decodeCeiling:F2} tokens/s (BF16 weights of all layers + tied output head per token)");
        foreach (var (engine, m) in medians)
        {
            var prefillShares = promptLengths.Select((length, p) =>
            {
                // Every layer runs for every prompt token; the output head only for the last one.
                double flops = 2.0 * (shape.NumLayers * shape.LayerMatrixParameters * (double)length + shape.EmbeddingParameters);
                double gflops = flops / (length / m.PrefillTokensPerSecond[p]) / 1e9;
                return $"prefill{length} {gflops:F1} GFLOP/s = {100 * gflops / fmaGflops:F1}% of FMA peak";
            });
            // Memory-mapped engines can go no faster than their mapped file reads; LLamaSharp's default copies the
            // file into anonymous memory, whose ceiling is the first figure.
            double files = engine == EngineCatalog.Qwen3Net ? filesGBps.Safetensors
                : engine == EngineCatalog.LlamaCppMemoryMapped ? filesGBps.Gguf : double.NaN;
            string filesShare = double.IsNaN(files) ? "" : $" ({100 * m.DecodeTokensPerSecond * bytesPerToken / (files * 1e9):F1}% of its mapped files' {files:F1} GB/s)";
            output.WriteLine($"  {engine}: decode {100 * m.DecodeTokensPerSecond / decodeCeiling:F1}% of bandwidth ceiling{filesShare}; {string.Join("; ", prefillShares)}");
        }
        foreach (var (engine, m) in medians)
        {
            output.WriteLine($"  {engine}: first greedy ids [{string.Join(", ", m.FirstDecodedIds)}]; {m.EngineInfo}");
        }
        output.WriteLine();
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

    private static string CpuModel() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown"
            : "unknown";
}
