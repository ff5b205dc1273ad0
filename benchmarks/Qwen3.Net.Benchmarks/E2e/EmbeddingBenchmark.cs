using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen3.Net.Retrieval;

namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// Embedding throughput: a batch of texts of random lengths (random token ids ending in &lt;|endoftext|&gt;) through
/// <see cref="Qwen3Embedder"/>, against native <c>llama-server --embeddings --pooling last</c> on the model's GGUF with
/// the same tokens, the same threads, rounds interleaved. Also checks both give the same vectors (cosine similarity).
/// </summary>
public static class EmbeddingBenchmark
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string modelFolder, int threads, int texts, int minTokens, int maxTokens, int rounds, string? llamaBin, int seed, TextWriter output)
    {
        var random = new Random(seed);
        int[][] inputs = Enumerable.Range(0, texts).Select(_ =>
        {
            var ids = new int[random.Next(minTokens, maxTokens + 1)];
            for (int i = 0; i < ids.Length - 1; i++)
            {
                ids[i] = random.Next(0, 151643);
            }

            ids[^1] = 151643;
            return ids;
        }).ToArray();
        long tokens = inputs.Sum(i => (long)i.Length);
        output.WriteLine($"embeddings: {texts} texts of {minTokens}-{maxTokens} tokens ({tokens} tokens), {threads} threads, {rounds} rounds, model {modelFolder}");

        using var embedder = Qwen3Embedder.Load(modelFolder, new Qwen3ModelOptions { ThreadCount = threads });
        embedder.EmbedTokensAsync(inputs.Take(4).ToArray()).GetAwaiter().GetResult();
        using var llama = llamaBin is null ? null : LlamaServer.Start(llamaBin, Path.Combine(modelFolder, Checkpoints.ModelGenerator.GgufFileName), threads, maxTokens, output);
        output.WriteLine($"llama.cpp: {(llama is null ? "not run (no --llama-bin)" : llama.Description)}");
        llama?.Embed(inputs.Take(4).ToArray());

        var ours = new List<double>();
        var theirs = new List<double>();
        float[][]? ourVectors = null, theirVectors = null;
        for (int round = 0; round < rounds; round++)
        {
            var clock = Stopwatch.StartNew();
            ourVectors = embedder.EmbedTokensAsync(inputs).GetAwaiter().GetResult();
            ours.Add(clock.Elapsed.TotalSeconds);
            output.WriteLine($"  round {round + 1}: Qwen3.Net {texts / ours[^1]:F2} texts/s, {tokens / ours[^1]:F1} tokens/s ({ours[^1]:F2} s)");
            if (llama is not null)
            {
                clock.Restart();
                theirVectors = llama.Embed(inputs);
                theirs.Add(clock.Elapsed.TotalSeconds);
                output.WriteLine($"  round {round + 1}: llama.cpp {texts / theirs[^1]:F2} texts/s, {tokens / theirs[^1]:F1} tokens/s ({theirs[^1]:F2} s)");
            }
        }

        double best = ours.Min();
        output.WriteLine($"Qwen3.Net best: {texts / best:F2} texts/s, {tokens / best:F1} tokens/s");
        if (llama is not null)
        {
            double bestTheirs = theirs.Min();
            output.WriteLine($"llama.cpp best: {texts / bestTheirs:F2} texts/s, {tokens / bestTheirs:F1} tokens/s");
            output.WriteLine($"ratio (Qwen3.Net / llama.cpp tokens/s): {bestTheirs / best:F2}x");
            double minCosine = ourVectors!.Zip(theirVectors!, (a, b) => a.Zip(b, (x, y) => (double)x * y).Sum() / Math.Sqrt(b.Sum(y => (double)y * y))).Min();
            output.WriteLine($"same vectors: smallest cosine similarity between the engines' embeddings {minCosine:F6}");
        }

        return 0;
    }

    /// <summary>A llama-server child process with embeddings and last-token pooling, on a free loopback port.</summary>
    private sealed class LlamaServer : IDisposable
    {
        private readonly Process _process;
        private readonly HttpClient _http = new() { Timeout = TimeSpan.FromHours(2) };
        private readonly Uri _base;

        private LlamaServer(Process process, Uri baseUri, string description)
        {
            _process = process;
            _base = baseUri;
            Description = description;
        }

        public string Description { get; }

        public static LlamaServer Start(string bin, string gguf, int threads, int maxTokens, TextWriter output)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();

            // 8 slots of maxTokens each, and a batch that holds several whole sequences: llama-server pools an
            // embedding only when the whole sequence is in one micro-batch.
            const int slots = 8;
            int batch = Math.Max(2048, maxTokens);
            string[] args =
            [
                "-m", gguf, "--embeddings", "--pooling", "last", "-t", threads.ToString(Inv), "-tb", threads.ToString(Inv),
                "-np", slots.ToString(Inv), "-c", (slots * (maxTokens + 16)).ToString(Inv), "-b", batch.ToString(Inv), "-ub", batch.ToString(Inv),
                "--host", "127.0.0.1", "--port", port.ToString(Inv),
            ];
            var start = new ProcessStartInfo(Path.Combine(bin, "llama-server")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in args)
            {
                start.ArgumentList.Add(a);
            }

            var process = Process.Start(start) ?? throw new InvalidOperationException("llama-server did not start.");
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new LlamaServer(process, new Uri($"http://127.0.0.1:{port}"), $"llama-server {string.Join(' ', args)}");
            var deadline = DateTime.UtcNow.AddMinutes(5);
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"llama-server exited with {process.ExitCode}.");
                }

                try
                {
                    using var health = server._http.GetAsync(new Uri(server._base, "/health")).GetAwaiter().GetResult();
                    if (health.StatusCode == HttpStatusCode.OK)
                    {
                        return server;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                if (DateTime.UtcNow > deadline)
                {
                    server.Dispose();
                    throw new TimeoutException("llama-server did not become healthy within 5 minutes.");
                }

                Thread.Sleep(200);
            }
        }

        /// <summary>One /v1/embeddings request with every input as a token list (llama-server spreads them over its slots).</summary>
        public float[][] Embed(int[][] inputs)
        {
            var body = new JsonObject { ["input"] = new JsonArray([.. inputs.Select(i => (JsonNode)new JsonArray([.. i.Select(t => (JsonNode)t)]))]) };
            using var response = _http.PostAsJsonAsync(new Uri(_base, "/v1/embeddings"), body).GetAwaiter().GetResult();
            string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"llama-server answered {(int)response.StatusCode}: {text}");
            }

            using var json = JsonDocument.Parse(text);
            return json.RootElement.GetProperty("data").EnumerateArray()
                .OrderBy(d => d.GetProperty("index").GetInt32())
                .Select(d => d.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray())
                .ToArray();
        }

        public void Dispose()
        {
            _http.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit();
            }

            _process.Dispose();
        }
    }
}
