using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Benchmarks.Soak;

/// <summary>
/// Many conversations on one model for a bounded time: random prompt lengths, random thinking switches, tool results,
/// random cancellations; half of them stateful <see cref="ChatSession"/>s, half stateless <see cref="ChatGenerator"/>
/// calls carrying their whole history. Every finished greedy turn is then run again alone and must give the same
/// tokens; process memory and threads are sampled throughout and their growth after warm-up reported.
/// </summary>
public sealed class SoakBenchmark(string modelFolder, int conversations, TimeSpan duration, int threads, int seed)
{
    private static readonly string[] Words = ["the", "model", "weather", "city", "tool", "answer", "why", "how", "天气", "北京", "data", "page", "cache", "rain", "sun", "Paris", "42"];

    private static readonly ToolDefinition Weather = ToolDefinition.Function(
        "get_weather", "Current weather of a city", JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""").RootElement);

    private readonly List<RecordedTurn> _turns = [];
    private int _cancelled;

    public int Run(TextWriter output)
    {
        using var model = Qwen3Model.Load(modelFolder, new Qwen3ModelOptions { ThreadCount = threads });
        var process = Process.GetCurrentProcess();
        var samples = new List<(double Seconds, long Rss, int Threads)>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(duration);
        output.WriteLine($"Soak: {conversations} conversations on {modelFolder}, {threads} thread(s), {duration.TotalMinutes:F1} min, seed {seed}");

        var tasks = Enumerable.Range(0, conversations)
            .Select(i => Task.Run(() => Converse(model, i, new Random(seed * 1000 + i), stop.Token)))
            .ToArray();
        while (!Task.WhenAll(tasks).Wait(TimeSpan.FromSeconds(5)))
        {
            process.Refresh();
            samples.Add((clock.Elapsed.TotalSeconds, process.WorkingSet64, process.Threads.Count));
        }

        process.Refresh();
        samples.Add((clock.Elapsed.TotalSeconds, process.WorkingSet64, process.Threads.Count));
        var failures = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Ran {clock.Elapsed.TotalSeconds:F0} s: {_turns.Count} finished turns, {_cancelled} cancelled turns, {failures.Count} failed conversations"));
        foreach (var failure in failures)
        {
            output.WriteLine($"  failure: {failure.GetType().Name}: {failure.Message}");
        }

        // After warm-up (the first fifth of the run), memory and threads must stay flat.
        double warm = samples[^1].Seconds / 5;
        var steady = samples.Where(s => s.Seconds >= warm).ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RSS after warm-up: {steady[0].Rss >> 20} MiB -> {steady[^1].Rss >> 20} MiB (max {steady.Max(s => s.Rss) >> 20} MiB, growth {(steady[^1].Rss - steady[0].Rss) >> 20} MiB)"));
        output.WriteLine($"Threads after warm-up: {steady[0].Threads} -> {steady[^1].Threads} (max {steady.Max(s => s.Threads)})");
        output.WriteLine($"KV pages held or retained at the end: {model.PagePool.AllocatedPages}");

        // Every finished turn again, alone: batching, shared pages and cancellations around it must not have changed it.
        var solo = new ChatGenerator(model);
        int mismatches = 0;
        foreach (var turn in _turns)
        {
            var ids = Collect(solo.GenerateAsync(turn.History, turn.Options)).SelectMany(u => u.TokenIds).ToArray();
            if (!ids.SequenceEqual(turn.TokenIds))
            {
                mismatches++;
                output.WriteLine($"  mismatch in conversation {turn.Conversation}: {turn.TokenIds.Length} tokens batched, {ids.Length} alone, first difference at {FirstDifference(ids, turn.TokenIds)}");
            }
        }

        output.WriteLine($"Solo replay: {_turns.Count - mismatches} of {_turns.Count} turns identical");
        return failures.Count == 0 && mismatches == 0 ? 0 : 1;
    }

    private async Task Converse(Qwen3Model model, int index, Random random, CancellationToken stop)
    {
        bool stateful = index % 2 == 0;
        using var session = stateful ? new ChatSession(model, new ChatSessionOptions { SystemPrompt = "You are a soak test." }) : null;
        var generator = new ChatGenerator(model);
        var history = new List<Message> { Message.System("You are a soak test.") };
        while (!stop.IsCancellationRequested)
        {
            var mode = random.Next(2) == 0 ? ThinkingMode.Enabled : ThinkingMode.Disabled;
            var sampling = SamplingOptions.Greedy with { MaxNewTokens = random.Next(1, 48) };
            string text = string.Join(' ', Enumerable.Range(0, random.Next(1, 200)).Select(_ => Words[random.Next(Words.Length)]));
            int cancelAfter = random.Next(5) == 0 ? random.Next(0, 8) : -1;
            using var cancel = new CancellationTokenSource();
            var updates = new List<ChatUpdate>();
            List<Message> before;
            ChatGenerationOptions options;
            if (stateful)
            {
                before = [.. session!.History, Message.User(text)];
                options = new ChatGenerationOptions { ThinkingMode = mode, Sampling = sampling };
                await foreach (var update in session.SendAsync(text, new ChatTurnOptions { ThinkingMode = mode, Sampling = sampling }, cancel.Token))
                {
                    updates.Add(update);
                    if (updates.Count == cancelAfter)
                    {
                        cancel.Cancel();
                    }
                }
            }
            else
            {
                // Now and then an exchange with the weather tool comes first, as an agent's history would have it.
                if (random.Next(4) == 0)
                {
                    history.Add(Message.User("What is the weather in Paris?"));
                    history.Add(Message.Assistant("", toolCalls: [ToolCall.FromJson("get_weather", """{"city": "Paris"}""")]));
                    history.Add(Message.Tool($$"""{"temperature": {{random.Next(-10, 35)}}}"""));
                }

                history.Add(Message.User(text));
                before = [.. history];
                options = new ChatGenerationOptions { ThinkingMode = mode, Sampling = sampling, Tools = random.Next(2) == 0 ? [Weather] : [] };
                await foreach (var update in generator.GenerateAsync(history, options, cancel.Token))
                {
                    updates.Add(update);
                    if (updates.Count == cancelAfter)
                    {
                        cancel.Cancel();
                    }
                }

                if (updates[^1].Message is { } assistant)
                {
                    history.Add(assistant);
                }
                else
                {
                    history.RemoveAt(history.Count - 1);
                }
            }

            if (updates[^1].FinishReason == FinishReason.Cancelled)
            {
                Interlocked.Increment(ref _cancelled);
                continue;
            }

            lock (_turns)
            {
                _turns.Add(new RecordedTurn(index, before, options, updates.SelectMany(u => u.TokenIds).ToArray()));
            }

            // Conversations restart before they get long, so the run keeps mixing short and long prompts.
            if (history.Count > 12)
            {
                history.RemoveRange(1, history.Count - 1);
            }

            if (stateful && session!.History.Count > 12)
            {
                session.Reset();
            }
        }
    }

    private static List<ChatUpdate> Collect(IAsyncEnumerable<ChatUpdate> updates) => updates.ToBlockingEnumerable().ToList();

    private static int FirstDifference(int[] a, int[] b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
        {
            i++;
        }

        return i;
    }

    private sealed record RecordedTurn(int Conversation, List<Message> History, ChatGenerationOptions Options, int[] TokenIds);
}
