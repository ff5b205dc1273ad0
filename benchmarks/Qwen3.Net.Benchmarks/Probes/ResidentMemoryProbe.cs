using System.Globalization;
using Qwen3.Net.Benchmarks.E2e;
using Qwen3.Net.Benchmarks.Engines;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// The process's resident memory (Linux, /proc/self/smaps_rollup) at each stage of one conversation, split into the
/// mapped files (the model's, the runtime's own) and anonymous memory (KV cache, scratch, managed heap, runtime), with
/// the managed heap's live and committed bytes: what a model costs beside its file.
/// </summary>
public static class ResidentMemoryProbe
{
    public static void Run(string model, int threads, int prompt, int decode, TextWriter output)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new ArgumentException("resident reads /proc/self/smaps_rollup, on Linux only.");
        }

        long fileBytes = File.Exists(model) ? new FileInfo(model).Length : Directory.GetFiles(model, "*.safetensors").Sum(f => new FileInfo(f).Length);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(model.TrimEnd('/'))}: weights file(s) {fileBytes / 1048576.0:F0} MiB, {threads} thread(s), {prompt}-token prompt, {decode} greedy tokens"));
        Print("start", output);
        using var loaded = Qwen3Model.Load(model, new Qwen3ModelOptions { ThreadCount = threads });
        Print("loaded", output);
        using var context = loaded.CreateContext();
        int next = Greedy.ArgMax(context.Evaluate(BenchmarkPrompt.Create(prompt, seed: 7)));
        Print("after the prompt", output);
        for (int i = 1; i < decode; i++)
        {
            next = Greedy.ArgMax(context.Evaluate([next]));
        }

        Print($"after {prompt + decode - 1} positions", output);
    }

    private static void Print(string stage, TextWriter output)
    {
        var kib = File.ReadAllLines("/proc/self/smaps_rollup")
            .Select(l => l.Split(':'))
            .Where(p => p.Length == 2 && p[1].TrimEnd().EndsWith("kB", StringComparison.Ordinal))
            .ToDictionary(p => p[0], p => long.Parse(p[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {stage,-24} resident {kib["Rss"] / 1024,6} MiB = files {(kib["Rss"] - kib["Anonymous"]) / 1024,6} + anonymous {kib["Anonymous"] / 1024,5}; managed heap {GC.GetTotalMemory(false) >> 20} MiB live, {gc.TotalCommittedBytes >> 20} committed"));
    }
}
