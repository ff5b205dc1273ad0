using System.Diagnostics;
using Qwen3.Net.Benchmarks.Engines;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// One engine, measured start to finish inside its own process (the <c>e2e-one</c> command), so its peak memory and
/// any state it leaves behind belong to it alone.
/// </summary>
public static class EngineRun
{
    public static EngineRunResult Measure(string engineName, string modelFolder, int threads, int[] promptLengths, int decodeTokens)
    {
        // A prompt of its own for every measurement: Qwen3.Net would otherwise find the KV pages of an earlier
        // measurement's identical prefix and skip computing them (llama.cpp's cache is emptied by Reset).
        int longest = promptLengths.Max();
        int contextSize = Math.Max(1024, longest + decodeTokens + 1);

        long started = Stopwatch.GetTimestamp();
        using var engine = EngineCatalog.Load(engineName, modelFolder, threads, contextSize);
        double loadSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

        int ttftTokens = promptLengths[0];
        started = Stopwatch.GetTimestamp();
        int[] decodePrompt = BenchmarkPrompt.Create(ttftTokens, seed: 1);
        int firstToken = Greedy.ArgMax(engine.Evaluate(decodePrompt));
        double ttftSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

        var prefill = new double[promptLengths.Length];
        for (int p = 0; p < promptLengths.Length; p++)
        {
            engine.Reset();
            started = Stopwatch.GetTimestamp();
            Greedy.ArgMax(engine.Evaluate(BenchmarkPrompt.Create(promptLengths[p], seed: 100 + (ulong)p)));
            prefill[p] = promptLengths[p] / Stopwatch.GetElapsedTime(started).TotalSeconds;
        }

        // The time-to-first-token prompt again, so the first decoded token can be checked against it.
        engine.Reset();
        int next = Greedy.ArgMax(engine.Evaluate(decodePrompt));
        var decoded = new List<int>(decodeTokens);
        started = Stopwatch.GetTimestamp();
        for (int i = 0; i < decodeTokens; i++)
        {
            decoded.Add(next);
            next = Greedy.ArgMax(engine.Evaluate([next]));
        }
        double decodeSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;

        if (decoded[0] != firstToken)
        {
            throw new InvalidOperationException($"{engineName}: the same prompt gave first token {firstToken}, then {decoded[0]}.");
        }

        return new EngineRunResult
        {
            Engine = engineName,
            Threads = threads,
            LoadSeconds = loadSeconds,
            TimeToFirstTokenSeconds = ttftSeconds,
            TimeToFirstTokenPromptTokens = ttftTokens,
            PromptLengths = promptLengths,
            PrefillTokensPerSecond = prefill,
            DecodeTokens = decodeTokens,
            DecodeTokensPerSecond = decodeTokens / decodeSeconds,
            PeakRssBytes = ProcessMemory.PeakResidentBytes(),
            FirstDecodedIds = decoded.Take(8).ToArray(),
            EngineInfo = engine.Description,
        };
    }
}
