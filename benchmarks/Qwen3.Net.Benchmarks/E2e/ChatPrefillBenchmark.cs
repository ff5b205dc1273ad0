using System.Diagnostics;
using System.Globalization;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// A long chat message through <see cref="ChatSession"/> against the same number of tokens through one direct
/// <see cref="InferenceContext.Evaluate(ReadOnlySpan{int})"/>, alternated in one process: what the chat layer costs a
/// prompt (rendering, tokenizing, the generator, the scheduler hand-off).
/// </summary>
public static class ChatPrefillBenchmark
{
    public static int Run(string modelFolder, int threads, int words, int rounds, TextWriter output)
    {
        using var model = Qwen3Model.Load(modelFolder, new Qwen3ModelOptions { ThreadCount = threads });
        var chat = new List<double>();
        var direct = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            // Words of the round's own, so no KV page of an earlier round can be shared.
            string message = string.Join(' ', Enumerable.Range(0, words).Select(i => $"r{round}w{i}"));
            using (var session = new ChatSession(model, new ChatSessionOptions { ThinkingMode = ThinkingMode.Disabled, Sampling = SamplingOptions.Greedy with { MaxNewTokens = 1 } }))
            {
                var usage = session.GetResponseAsync(message).GetAwaiter().GetResult().Usage;
                chat.Add(usage.PrefillTokensPerSecond);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {round + 1} chat:   {usage.PromptTokens} tokens at {usage.PrefillTokensPerSecond:F1} t/s"));
            }

            int[] ids = BenchmarkPrompt.Create(PromptTokens(model, message), seed: 5000 + (ulong)round);
            using var ctx = model.CreateContext(ids.Length + 1);
            long start = Stopwatch.GetTimestamp();
            ctx.Evaluate(ids);
            double rate = ids.Length / Stopwatch.GetElapsedTime(start).TotalSeconds;
            direct.Add(rate);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {round + 1} direct: {ids.Length} tokens at {rate:F1} t/s"));
        }

        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"chat-path prefill / direct Evaluate: {Median(chat) / Median(direct):F3} (medians {Median(chat):F1} and {Median(direct):F1} t/s)"));
        return 0;
    }

    private static int PromptTokens(Qwen3Model model, string message) =>
        new ChatGenerator(model).EncodePrompt([Message.User(message)], new ChatGenerationOptions { ThinkingMode = ThinkingMode.Disabled }).Length;
}
