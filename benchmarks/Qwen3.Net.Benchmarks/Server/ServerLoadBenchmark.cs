using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Qwen3.Net.Benchmarks.E2e;

namespace Qwen3.Net.Benchmarks.Server;

/// <summary>Figures of one concurrency level on one server.</summary>
internal sealed record LoadResult(
    string Server, int Clients, int Requests, int Failed, double Seconds, long CompletionTokens, int ShortCompletions,
    double TtftP50, double TtftP99, double InterTokenP50, double InterTokenP99, double DecodeTokensPerSecondPerRequest, string? FirstProblem)
{
    public double RequestsPerSecond => Requests / Seconds;

    public double TokensPerSecond => CompletionTokens / Seconds;
}

/// <summary>
/// OpenAI streaming chat load on our server and on native <c>llama-server</c> with the same weights (safetensors folder
/// and its BF16 GGUF), on loopback: N clients each send a fixed number of requests one after another, with the same
/// prompts (about 128 tokens) and 128 generated tokens; the servers run one after the other (A, B, A, B), each started
/// fresh in its own process. Reports requests/s, aggregate generated tokens/s, TTFT and inter-token p50/p99, and, at one
/// client, our server's decode speed against the in-process generator's (the <c>concurrent</c> benchmark's child).
/// </summary>
/// <remarks>
/// Generated length: llama-server takes <c>ignore_eos</c>. Our server has no such field; the random-weight model
/// practically never samples an end-of-turn token, and every response's <c>completion_tokens</c> is checked, so a short
/// one is counted (<see cref="LoadResult.ShortCompletions"/>) rather than silently lowering the figures.
/// </remarks>
internal sealed class ServerLoadBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Words =
    [
        "the", "model", "server", "river", "city", "weather", "morning", "people", "language", "history", "water", "light",
        "music", "garden", "street", "window", "mountain", "market", "school", "friend", "evening", "winter", "summer", "book",
    ];

    private readonly string _model;
    private readonly Lazy<JsonArray> _notUtf8Tokens;
    private readonly string _gguf;
    private readonly string? _llamaBin;
    private readonly int[] _clients;
    private readonly int _requestsPerClient;
    private readonly int _decode;
    private readonly int _promptWords;
    private readonly int _rounds;
    private readonly int _threads;
    private readonly bool _packedWeights;

    public ServerLoadBenchmark(string model, string gguf, string? llamaBin, int[] clients, int requestsPerClient, int promptWords, int decode, int rounds, int threads, bool packedWeights = false)
    {
        (_model, _gguf, _llamaBin, _clients, _requestsPerClient, _promptWords, _decode, _rounds, _threads, _packedWeights) =
            (model, gguf, llamaBin, clients, requestsPerClient, promptWords, decode, rounds, threads, packedWeights);
        _notUtf8Tokens = new Lazy<JsonArray>(NotUtf8TokenBans);
    }

    public async Task<int> RunAsync(TextWriter output)
    {
        output.WriteLine($"server-load: {_model} ({_threads} threads{(_packedWeights ? ", packed weights" : "")}), clients {string.Join(',', _clients)}, {_requestsPerClient} requests each, " +
            $"~{_promptWords} prompt words, {_decode} generated tokens, {_rounds} rounds, llama-server {(_llamaBin is null ? "not run (no --llama-bin)" : "from " + _llamaBin)}");
        var results = new List<LoadResult>();
        var overheads = new List<double>();
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
        for (int round = 0; round < _rounds; round++)
        {
            foreach (int clients in _clients)
            {
                int context = _promptWords * 2 + _decode + 64;
                LoadResult served;
                string[] serverArgs = ["--model", _model, "--threads", _threads.ToString(Inv), "--served-model-name", "load", "--context", context.ToString(Inv)];
                using (var ours = await ServerChild.StartQwen3Async(_packedWeights ? [.. serverArgs, "--packed-weights"] : serverArgs).ConfigureAwait(false))
                {
                    results.Add(served = Report(output, await MeasureAsync(http, "qwen3net", ours.BaseUri, clients, llama: false).ConfigureAwait(false)));
                }

                if (clients == 1)
                {
                    // The in-process generator right after, on the same model, threads, prompt and decode lengths (the
                    // concurrent benchmark's child), so each round's overhead compares runs minutes apart, not the whole run.
                    var inProcess = ConcurrentBenchmark.RunChild(_model, _threads, 1, _promptWords + 20, _decode, 0, _packedWeights);
                    if (inProcess is not null)
                    {
                        double overhead = 1 - served.DecodeTokensPerSecondPerRequest / inProcess.DecodeTokensPerSecond;
                        overheads.Add(overhead);
                        output.WriteLine(string.Create(Inv,
                            $"  in-process N=1: decode {inProcess.DecodeTokensPerSecond:F2} tok/s; over HTTP {served.DecodeTokensPerSecondPerRequest:F2}: overhead {overhead * 100:F1}%"));
                    }
                }

                if (_llamaBin is not null)
                {
                    using var llama = await ServerChild.StartLlamaAsync(_llamaBin, _gguf, clients, _threads, context * clients).ConfigureAwait(false);
                    try
                    {
                        results.Add(Report(output, await MeasureAsync(http, "llama-server", llama.BaseUri, clients, llama: true).ConfigureAwait(false)));
                    }
                    catch (HttpRequestException e)
                    {
                        output.WriteLine($"  llama-server N={clients}: a request failed ({e.Message}; exited: {llama.HasExited}); its last log lines:");
                        foreach (string line in llama.LogTail)
                        {
                            output.WriteLine("    " + line);
                        }
                    }
                }
            }
        }

        output.WriteLine("Medians over rounds:");
        foreach (var group in results.GroupBy(r => (r.Clients, r.Server)).OrderBy(g => g.Key.Clients).ThenBy(g => g.Key.Server, StringComparer.Ordinal))
        {
            double Median(Func<LoadResult, double> f) => Percentile(group.Select(f).ToList(), 0.5);
            output.WriteLine(string.Create(Inv,
                $"  N={group.Key.Clients} {group.Key.Server,-12} {Median(r => r.TokensPerSecond),7:F2} tok/s  {Median(r => r.RequestsPerSecond),6:F3} req/s  TTFT p50 {Median(r => r.TtftP50),6:F2} s p99 {Median(r => r.TtftP99),6:F2} s  ITL p50 {Median(r => r.InterTokenP50) * 1000,6:F0} ms p99 {Median(r => r.InterTokenP99) * 1000,6:F0} ms"));
            if (group.Key.Server == "qwen3net" && results.Any(r => r.Server == "llama-server" && r.Clients == group.Key.Clients))
            {
                double llama = Percentile(results.Where(r => r.Server == "llama-server" && r.Clients == group.Key.Clients).Select(r => r.TokensPerSecond).ToList(), 0.5);
                output.WriteLine(string.Create(Inv, $"  N={group.Key.Clients} qwen3net / llama-server tokens/s: {Median(r => r.TokensPerSecond) / llama:F2}x"));
            }
        }

        if (overheads.Count > 0)
        {
            output.WriteLine(string.Create(Inv,
                $"Server overhead at 1 client (decode over HTTP against the in-process generator right after it, per round): {string.Join(", ", overheads.Select(o => (o * 100).ToString("F1", Inv) + "%"))}; median {Percentile(overheads, 0.5) * 100:F1}% (target <= 5%; negative means the server was faster)"));
        }

        int failed = results.Sum(r => r.Failed);
        return failed == 0 ? 0 : 1;
    }

    private async Task<LoadResult> MeasureAsync(HttpClient http, string server, Uri baseUri, int clients, bool llama)
    {
        var completions = new Uri(baseUri, "v1/chat/completions");
        // One request first, so neither server's first-request costs (JIT, page faults) are measured.
        await ChatStream.RunAsync(http, completions, Body(llama, seed: 999, maxTokens: 8)).ConfigureAwait(false);

        var outcomes = new List<StreamOutcome>[clients];
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            outcomes[c] = [];
            for (int r = 0; r < _requestsPerClient; r++)
            {
                outcomes[c].Add(await ChatStream.RunAsync(http, completions, Body(llama, seed: c * 1000 + r, _decode)).ConfigureAwait(false));
            }
        }))).ConfigureAwait(false);
        double seconds = clock.Elapsed.TotalSeconds;

        var all = outcomes.SelectMany(o => o).ToList();

        var good = all.Where(o => o.Problem is null && o.Status == System.Net.HttpStatusCode.OK && o.TextChunkTimes.Count > 0).ToList();
        var gaps = good.SelectMany(o => o.TextChunkTimes.Zip(o.TextChunkTimes.Skip(1), (a, b) => b - a)).ToList();
        var decodeRates = good.Where(o => o.TextChunkTimes.Count > 1 && o.CompletionTokens is > 1)
            .Select(o => (o.CompletionTokens!.Value - 1) / (o.TextChunkTimes[^1] - o.TextChunkTimes[0])).ToList();
        return new LoadResult(
            server, clients, all.Count, all.Count - good.Count, seconds, good.Sum(o => (long)(o.CompletionTokens ?? o.TextChunkTimes.Count)),
            good.Count(o => o.CompletionTokens is { } n && n < _decode),
            Percentile(good.Select(o => o.TextChunkTimes[0]).ToList(), 0.5), Percentile(good.Select(o => o.TextChunkTimes[0]).ToList(), 0.99),
            Percentile(gaps, 0.5), Percentile(gaps, 0.99), Percentile(decodeRates, 0.5),
            all.Except(good).Select(o => $"{(int)o.Status} {o.Problem} {o.Error?.ToJsonString()}").FirstOrDefault());
    }

    /// <summary>
    /// llama-server parses each whole reply when it ends and, when random weights produced bytes that are not UTF-8
    /// text, sends an error chunk in place of the last one and can drop other streams with it (2026-12-05). Banning
    /// the tokens that are not UTF-8 on their own keeps every reply text; the ban costs it a loop over the list per
    /// step, small against a step of the 1.7B model.
    /// </summary>
    private JsonArray NotUtf8TokenBans()
    {
        var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(_model, "tokenizer.json"));
        var bans = new JsonArray();
        for (int id = 0; id < tokenizer.VocabularySize; id++)
        {
            if (tokenizer.Decode([id]).Contains('\uFFFD', StringComparison.Ordinal))
            {
                bans.Add(new JsonArray(id, false));
            }
        }

        return bans;
    }

    /// <summary>The same request for both servers: a prompt of seeded random words, fixed sampling, thinking off; llama-server also gets ignore_eos and the bans of <see cref="NotUtf8TokenBans"/>.</summary>
    private string Body(bool llama, int seed, int maxTokens)
    {
        var random = new Random(seed);
        var prompt = new StringBuilder("Summarize the following words in one paragraph: ");
        for (int i = 0; i < _promptWords; i++)
        {
            prompt.Append(Words[random.Next(Words.Length)]).Append(' ');
        }

        var body = new JsonObject
        {
            ["model"] = "load",
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
            ["max_tokens"] = maxTokens,
            ["temperature"] = 0.7,
            ["top_k"] = 20,
            ["top_p"] = 0.8,
            ["min_p"] = 0.0,
            ["seed"] = seed,
            ["chat_template_kwargs"] = new JsonObject { ["enable_thinking"] = false },
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt.ToString() }),
        };
        if (llama)
        {
            body["ignore_eos"] = true;
            body["logit_bias"] = _notUtf8Tokens.Value.DeepClone();
        }

        return body.ToJsonString();
    }

    private static LoadResult Report(TextWriter output, LoadResult r)
    {
        output.WriteLine(string.Create(Inv,
            $"  {r.Server,-12} N={r.Clients}: {r.Requests} requests ({r.Failed} failed, {r.ShortCompletions} short) in {r.Seconds:F1} s: {r.TokensPerSecond:F2} tok/s, {r.RequestsPerSecond:F3} req/s, TTFT p50 {r.TtftP50:F2} s p99 {r.TtftP99:F2} s, ITL p50 {r.InterTokenP50 * 1000:F0} ms p99 {r.InterTokenP99 * 1000:F0} ms, per-request decode {r.DecodeTokensPerSecondPerRequest:F2} tok/s"));
        if (r.FirstProblem is not null)
        {
            output.WriteLine($"    first failure: {r.FirstProblem}");
        }

        return r;
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        values.Sort();
        return values[(int)Math.Min(values.Count - 1, Math.Ceiling(p * values.Count) - 1 < 0 ? 0 : Math.Ceiling(p * values.Count) - 1)];
    }
}
