using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Qwen3.Net.ScriptedModel;

namespace Qwen3.Net.Benchmarks.Server;

/// <summary>
/// The HTTP server under sustained mixed traffic for a bounded time, on loopback: the server executable's host runs in
/// two child processes, one on the tiny random model (long, random output) and one on the scripted model (known
/// reasoning, answers and tool calls). Clients send streamed and whole requests, tool calls and tool round trips, drop
/// streams mid-way, and send malformed and oversize bodies. Every response is checked against the protocol; outcomes
/// are counted by kind; the servers' RSS and threads are sampled, and at the end /health must show no request running.
/// </summary>
internal sealed class ServerSoakBenchmark
{
    private const string Weather = """{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}""";
    private const int OversizeBytes = (8 << 20) + 1024;
    private static readonly string[] Words = ["weather", "river", "模型", "serveur", "🌍", "token", "batch", "the", "of", "cache", "页面", "Paris"];

    private readonly int _clients;
    private readonly TimeSpan _duration;
    private readonly int _threads;
    private readonly int _seed;
    private readonly ConcurrentDictionary<string, int> _outcomes = new();
    private readonly ConcurrentDictionary<string, string> _firstProblem = new();
    private int _failures;
    private int _disconnects;

    public ServerSoakBenchmark(int clients, TimeSpan duration, int threads, int seed)
    {
        _clients = clients;
        _duration = duration;
        _threads = threads;
        _seed = seed;
    }

    public async Task<int> RunAsync(TextWriter output)
    {
        string scripted = Path.Combine(Path.GetTempPath(), $"qwen3net-server-soak-{Environment.ProcessId}");
        ScriptedModelGenerator.Write(scripted, RepositoryPaths.TinyQwen3Fixture);
        try
        {
            string threads = _threads.ToString(CultureInfo.InvariantCulture);
            using var tiny = await ServerChild.StartQwen3Async(["--model", RepositoryPaths.TinyQwen3Fixture, "--threads", threads, "--context", "2048", "--served-model-name", "tiny"]).ConfigureAwait(false);
            using var script = await ServerChild.StartQwen3Async(["--model", scripted, "--threads", threads, "--served-model-name", "scripted"]).ConfigureAwait(false);
            output.WriteLine($"server-soak: {_clients} clients for {_duration.TotalMinutes:F1} min against {tiny.BaseUri} (tiny random model) and {script.BaseUri} (scripted model), {_threads} threads each");

            using var http = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0, PooledConnectionLifetime = TimeSpan.FromMinutes(1) }) { Timeout = TimeSpan.FromMinutes(5) };
            var clock = Stopwatch.StartNew();
            var samples = new List<(double Seconds, long TinyRss, int TinyThreads, long ScriptRss, int ScriptThreads)>();
            using var stop = new CancellationTokenSource(_duration);
            var sampler = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var (tr, tt) = tiny.Sample();
                    var (sr, st) = script.Sample();
                    lock (samples)
                    {
                        samples.Add((clock.Elapsed.TotalSeconds, tr, tt, sr, st));
                    }

                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(5), stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            });

            var clients = Enumerable.Range(0, _clients).Select(i => Task.Run(() => ClientLoopAsync(http, tiny.BaseUri, script.BaseUri, new Random(_seed * 1000 + i), stop.Token))).ToArray();
            await Task.WhenAll(clients).ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
            double elapsed = clock.Elapsed.TotalSeconds;

            // Dropped streams are cancelled within a step; wait for that before reading the counters.
            var tinyHealth = await SettledHealthAsync(http, tiny.BaseUri).ConfigureAwait(false);
            var scriptHealth = await SettledHealthAsync(http, script.BaseUri).ConfigureAwait(false);

            int total = _outcomes.Values.Sum();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{total} requests in {elapsed:F0} s ({total / elapsed:F1}/s); outcomes:"));
            foreach (var (kind, count) in _outcomes.OrderBy(o => o.Key, StringComparer.Ordinal))
            {
                output.WriteLine($"  {kind,-40} {count}");
            }

            foreach (var (kind, problem) in _firstProblem)
            {
                output.WriteLine($"  first problem of {kind}: {problem}");
            }

            ReportGrowth(output, "tiny server", samples.Select(s => (s.Seconds, s.TinyRss, s.TinyThreads)).ToList());
            ReportGrowth(output, "scripted server", samples.Select(s => (s.Seconds, s.ScriptRss, s.ScriptThreads)).ToList());
            long cancelled = tinyHealth["cancelled_requests"]!.GetValue<long>() + scriptHealth["cancelled_requests"]!.GetValue<long>();
            int running = tinyHealth["running_requests"]!.GetValue<int>() + scriptHealth["running_requests"]!.GetValue<int>();
            output.WriteLine($"/health at the end: running_requests {running}, cancelled_requests {cancelled} (clients dropped {_disconnects} streams)");
            bool leaked = running != 0;
            output.WriteLine(_failures == 0 && !leaked ? "PASS: every response well-formed, no 5xx, no request left running" : $"FAIL: {_failures} bad responses, {running} requests left running");
            return _failures == 0 && !leaked ? 0 : 1;
        }
        finally
        {
            Directory.Delete(scripted, recursive: true);
        }
    }

    private async Task ClientLoopAsync(HttpClient http, Uri tiny, Uri scripted, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            int pick = random.Next(100);
            try
            {
                if (pick < 30)
                {
                    await StreamedChatAsync(http, tiny, random).ConfigureAwait(false);
                }
                else if (pick < 45)
                {
                    await WholeChatAsync(http, tiny, random).ConfigureAwait(false);
                }
                else if (pick < 65)
                {
                    await ToolCallAsync(http, scripted, random).ConfigureAwait(false);
                }
                else if (pick < 80)
                {
                    bool onTiny = random.Next(2) == 0;
                    await DisconnectAsync(http, onTiny ? tiny : scripted, onTiny ? "tiny" : "scripted", random).ConfigureAwait(false);
                }
                else if (pick < 95)
                {
                    await MalformedAsync(http, tiny, random).ConfigureAwait(false);
                }
                else
                {
                    await OversizeAsync(http, tiny, random).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                Fail("transport error", e.GetType().Name + ": " + e.Message);
            }
        }
    }

    private string ChatBody(Random random, string model, bool stream, string extra = "")
    {
        var prompt = new StringBuilder();
        for (int n = random.Next(1, 200); n > 0; n--)
        {
            prompt.Append(Words[random.Next(Words.Length)]).Append(' ');
        }

        string thinking = random.Next(2) == 0 ? "true" : "false";
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt.ToString() });
        return $$"""{"model": "{{model}}", "stream": {{(stream ? "true" : "false")}}, "stream_options": {"include_usage": true}, "enable_thinking": {{thinking}}, "max_tokens": {{random.Next(1, 48)}}, "seed": {{random.Next()}}, "messages": {{messages.ToJsonString()}}{{extra}}}""";
    }

    private async Task StreamedChatAsync(HttpClient http, Uri tiny, Random random)
    {
        var outcome = await ChatStream.RunAsync(http, Completions(tiny), ChatBody(random, "tiny", stream: true)).ConfigureAwait(false);
        if (outcome.Status != HttpStatusCode.OK || outcome.Problem is not null || outcome.FinishReason is not ("stop" or "length") || outcome.CompletionTokens is null)
        {
            Fail("streamed chat", $"{(int)outcome.Status} {outcome.Problem} finish {outcome.FinishReason} {outcome.Error?.ToJsonString()}");
            return;
        }

        Count("ok: streamed chat");
    }

    private async Task WholeChatAsync(HttpClient http, Uri tiny, Random random)
    {
        using var response = await http.PostAsync(Completions(tiny), new StringContent(ChatBody(random, "tiny", stream: false), Encoding.UTF8, "application/json")).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        var json = ChatStream.ParseOrNull(text);
        if (response.StatusCode != HttpStatusCode.OK || json?["object"]?.GetValue<string>() != "chat.completion"
            || json["choices"]?[0]?["message"]?["content"] is null || json["usage"]?["completion_tokens"] is null)
        {
            Fail("whole chat", $"{(int)response.StatusCode} {Cut(text)}");
            return;
        }

        Count("ok: whole chat");
    }

    /// <summary>Asks the scripted model for the weather: it calls the tool; half the time the result goes back and the answer must follow.</summary>
    private async Task ToolCallAsync(HttpClient http, Uri scripted, Random random)
    {
        bool stream = random.Next(2) == 0;
        string question = """[{"role": "user", "content": "What is the weather in Paris?"}]""";
        string body = $$"""{"model": "scripted", "stream": {{(stream ? "true" : "false")}}, "enable_thinking": {{(random.Next(2) == 0 ? "true" : "false")}}, "tools": [{{Weather}}], "messages": {{question}}}""";
        string? id;
        string? arguments;
        if (stream)
        {
            var outcome = await ChatStream.RunAsync(http, Completions(scripted), body).ConfigureAwait(false);
            if (outcome.Problem is not null || outcome.FinishReason != "tool_calls" || outcome.ToolCalls.Count != 1 || outcome.ToolCalls[0].Name != Script.ToolName)
            {
                Fail("tool call", $"{(int)outcome.Status} {outcome.Problem} finish {outcome.FinishReason} calls {outcome.ToolCalls.Count}");
                return;
            }

            (id, _, arguments) = outcome.ToolCalls[0];
        }
        else
        {
            using var response = await http.PostAsync(Completions(scripted), new StringContent(body, Encoding.UTF8, "application/json")).ConfigureAwait(false);
            var json = ChatStream.ParseOrNull(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
            var call = json?["choices"]?[0]?["message"]?["tool_calls"]?[0];
            id = call?["id"]?.GetValue<string>();
            arguments = call?["function"]?["arguments"]?.GetValue<string>();
        }

        if (arguments != Script.ToolArgumentsJson || id is null)
        {
            Fail("tool call", $"arguments {arguments}");
            return;
        }

        if (random.Next(2) == 0)
        {
            Count(stream ? "ok: streamed tool call" : "ok: whole tool call");
            return;
        }

        var assistant = new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = null,
            ["tool_calls"] = new JsonArray(new JsonObject { ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = Script.ToolName, ["arguments"] = arguments } }),
        };
        var result = new JsonObject { ["role"] = "tool", ["tool_call_id"] = id, ["content"] = """{"temperature": 21}""" };
        var messages = JsonNode.Parse(question)!.AsArray();
        messages.Add(assistant);
        messages.Add(result);
        string roundTrip = $$"""{"model": "scripted", "stream": true, "tools": [{{Weather}}], "messages": {{messages.ToJsonString()}}}""";
        var answer = await ChatStream.RunAsync(http, Completions(scripted), roundTrip).ConfigureAwait(false);
        if (answer.Problem is not null || answer.FinishReason != "stop" || answer.Content != Script.FinalAnswer)
        {
            Fail("tool round trip", $"{(int)answer.Status} {answer.Problem} finish {answer.FinishReason} content {answer.Content}");
            return;
        }

        Count("ok: tool round trip");
    }

    private async Task DisconnectAsync(HttpClient http, Uri server, string model, Random random)
    {
        var json = JsonNode.Parse(ChatBody(random, model, stream: true))!;
        json["max_tokens"] = 512;
        var outcome = await ChatStream.RunAsync(http, Completions(server), json.ToJsonString(), abortAfterChunks: random.Next(1, 6)).ConfigureAwait(false);
        if (outcome.Aborted)
        {
            Interlocked.Increment(ref _disconnects);
            Count("ok: dropped mid-stream");
        }
        else if (outcome.Problem is null && outcome.Status == HttpStatusCode.OK)
        {
            Count("ok: finished before the drop");
        }
        else
        {
            Fail("dropped stream", $"{(int)outcome.Status} {outcome.Problem}");
        }
    }

    private static readonly string[] Malformed =
    [
        "{", "[]", "null", """{"model": "tiny"}""", """{"model": "tiny", "messages": "hi"}""", """{"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]}""",
        """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "temperature": -1}""", """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "n": 2}""",
        """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}""", """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "top_k": "many"}""",
        """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "stop": [1]}""", """{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}""",
        "{\"model\": \"tiny\", \"m\\ud800\": 1, \"messages\": []}",
    ];

    private async Task MalformedAsync(HttpClient http, Uri tiny, Random random)
    {
        string body = Malformed[random.Next(Malformed.Length)];
        if (random.Next(3) == 0)
        {
            // A valid request cut short: whatever the cut, a 400.
            string valid = ChatBody(random, "tiny", stream: random.Next(2) == 0);
            body = valid[..random.Next(valid.Length - 1)];
        }

        using var response = await http.PostAsync(Completions(tiny), new StringContent(body, Encoding.UTF8, "application/json")).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.BadRequest || ChatStream.ParseOrNull(text)?["error"]?["message"] is null)
        {
            Fail("malformed", $"{(int)response.StatusCode} for {Cut(body)}: {Cut(text)}");
            return;
        }

        Count("ok: 400 malformed");
    }

    private async Task OversizeAsync(HttpClient http, Uri tiny, Random random)
    {
        // Half with a Content-Length the server refuses at once, half chunked, so the limit is hit while reading.
        var payload = new byte[OversizeBytes];
        Array.Fill(payload, (byte)' ');
        HttpContent content = random.Next(2) == 0 ? new ByteArrayContent(payload) : new StreamContent(new MemoryStream(payload));
        if (content is StreamContent)
        {
            content.Headers.ContentLength = null;
        }

        try
        {
            using var response = await http.PostAsync(Completions(tiny), content).ConfigureAwait(false);
            string text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.RequestEntityTooLarge || ChatStream.ParseOrNull(text)?["error"] is null)
            {
                Fail("oversize", $"{(int)response.StatusCode} {Cut(text)}");
                return;
            }

            Count("ok: 413 oversize");
        }
        catch (HttpRequestException)
        {
            // The server answered 413 and closed before the client finished sending: the client sees a reset, not the answer.
            Count("ok: oversize refused before the body was sent");
        }
    }

    private static async Task<JsonNode> SettledHealthAsync(HttpClient http, Uri server)
    {
        JsonNode health = new JsonObject();
        for (int attempt = 0; attempt < 100; attempt++)
        {
            health = JsonNode.Parse(await http.GetStringAsync(new Uri(server, "health")).ConfigureAwait(false))!;
            if (health["running_requests"]!.GetValue<int>() == 0)
            {
                break;
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        return health;
    }

    private static void ReportGrowth(TextWriter output, string name, List<(double Seconds, long Rss, int Threads)> samples)
    {
        // Warm-up: the first fifth of the run (at least one sample is left out), while the JIT, pools and caches fill.
        var steady = samples.Skip(Math.Max(1, samples.Count / 5)).ToList();
        if (steady.Count < 2)
        {
            output.WriteLine($"{name}: too few samples");
            return;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: RSS after warm-up {steady[0].Rss >> 20} -> {steady[^1].Rss >> 20} MiB (min {steady.Min(s => s.Rss) >> 20}, max {steady.Max(s => s.Rss) >> 20}); threads {steady[0].Threads} -> {steady[^1].Threads} (max {steady.Max(s => s.Threads)}); {samples.Count} samples every 5 s"));
    }

    private static Uri Completions(Uri server) => new(server, "v1/chat/completions");

    private void Count(string kind) => _outcomes.AddOrUpdate(kind, 1, (_, n) => n + 1);

    private void Fail(string kind, string problem)
    {
        Interlocked.Increment(ref _failures);
        Count("FAIL: " + kind);
        _firstProblem.TryAdd(kind, problem);
    }

    private static string Cut(string text) => text.Length > 200 ? text[..200] + "…" : text;
}
