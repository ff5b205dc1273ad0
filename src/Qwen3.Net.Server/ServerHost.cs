using System.Diagnostics;
using System.Net;

namespace Qwen3.Net.Server;

/// <summary>
/// The executable's app (not started), its chat model (disposed by the caller after the app stops) and the chat
/// service; both null when only retrieval models are served.
/// </summary>
internal sealed record ServerHost(WebApplication App, Qwen3Model? Model, Qwen3OpenAIService? Service)
{
    /// <summary>Loads the models and builds the app: the OpenAI endpoints, Kestrel bound where the command line says.</summary>
    public static ServerHost Build(ServerCommandLine commandLine)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        // The server logs its own line per request; ASP.NET Core's per-request lines would triple the log.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        string host = IPAddress.TryParse(commandLine.Host, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{commandLine.Host}]"
            : commandLine.Host;
        builder.WebHost.UseUrls($"http://{host}:{commandLine.Port}");

        var app = builder.Build();
        var log = app.Logger;
        if (!commandLine.IsLoopback && commandLine.ApiKey is null)
        {
            log.LogWarning("Listening on {Host} without --api-key: anyone who can reach this address can use the model.", commandLine.Host);
        }

        var modelOptions = new Qwen3ModelOptions
        {
            ThreadCount = commandLine.Threads, RefreshPageCache = commandLine.RefreshPageCache, PackedWeights = commandLine.PackedWeights,
        };
        if (commandLine.MaxSequences is { } sequences)
        {
            modelOptions = modelOptions with { MaxBatchSequences = sequences };
        }

        var options = new Qwen3ServerOptions
        {
            ApiKey = commandLine.ApiKey,
            ContextLength = commandLine.Context,
            ServedModelName = commandLine.ServedModelName,
        };
        if (commandLine.MaxConcurrentRequests is { } concurrent)
        {
            options = options with { MaxConcurrentRequests = concurrent };
        }

        // Retrieval models alone make a retrieval server; the bundled chat model stands in only when nothing is named.
        bool chat = commandLine.Model is not null || (commandLine.EmbeddingModel is null && commandLine.RerankerModel is null);
        Qwen3Model? model = null;
        Qwen3OpenAIService? service = null;
        if (chat)
        {
            string folder = commandLine.Model ?? FindBundledModel()
                ?? throw new DirectoryNotFoundException("No --model given and the bundled tiny model (tests/fixtures/tiny-qwen3) was not found.");
            if (commandLine.Model is null)
            {
                log.LogWarning("No --model given: serving the bundled tiny test model {Folder}, whose weights are random, so its output is random text.", folder);
            }

            model = Qwen3Model.Load(folder, modelOptions);
        }
        else if (commandLine.ServedModelName is not null || commandLine.Context is not null || commandLine.MaxConcurrentRequests is not null)
        {
            log.LogWarning("No --model given: --served-model-name, --context and --max-concurrent-requests apply to the chat model, so they are ignored.");
        }

        try
        {
            if (model is not null)
            {
                if (commandLine.Warmup)
                {
                    WarmUp(log, "the chat model", () =>
                    {
                        // A prompt, then a decode step: the two kinds of forward pass a chat runs.
                        using var context = model.CreateContext(WarmupPromptTokens + 1);
                        context.Evaluate(WarmupPrompt);
                        context.Evaluate([WarmupPromptTokens]);
                    });
                }

                service = app.MapQwen3OpenAI(model, options);
                log.LogInformation("Serving {Model} from {Folder} on {Threads} threads, context {Context} tokens.", service.ModelId, model.Folder, model.ThreadCount,
                    options.ContextLength ?? model.Config.MaxPositionEmbeddings);
            }

            MapRetrievalModels(app, commandLine, modelOptions, options);
        }
        catch
        {
            model?.Dispose();
            throw;
        }

        if (service is null)
        {
            log.LogInformation("No chat model: chat completions are answered 404 model_not_found.");
            app.MapGet("/health", http => HttpExchange.WriteJsonAsync(http, 200, """{"status":"ok"}"""u8.ToArray()));
        }

        // A request naming a served model at an endpoint of another kind, or of a kind not served, is told what is served.
        ServedModels.Of(app)!.MapUnservedKinds(app);
        app.MapFallback(Qwen3OpenAIService.WriteNotFoundAsync);
        return new ServerHost(app, model, service);
    }

    /// <summary>Tokens of the warm-up prompt: more than any matrix-vector threshold, so the prompt tile is compiled too.</summary>
    private const int WarmupPromptTokens = 16;

    private static readonly int[] WarmupPrompt = [.. Enumerable.Range(0, WarmupPromptTokens)];

    /// <summary>
    /// Runs a model's first forward passes before the server listens, as llama-server does at start: the kernels are
    /// compiled at their first call and the first pass faults the mapped weights in, both of which a process's first
    /// chat request would otherwise wait for (docs/benchmarks.md).
    /// </summary>
    private static void WarmUp(ILogger log, string model, Action run)
    {
        long started = Stopwatch.GetTimestamp();
        run();
        log.LogInformation("Warmed up {Model} in {Seconds:F2} s (--no-warmup skips it).", model, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>
    /// Loads the embedding and reranker models the command line names and maps their endpoints, each served under its
    /// folder's name and disposed when the app stops.
    /// </summary>
    private static void MapRetrievalModels(WebApplication app, ServerCommandLine commandLine, Qwen3ModelOptions modelOptions, Qwen3ServerOptions options)
    {
        options = options with { ServedModelName = null };
        var loaded = new List<IDisposable>();
        try
        {
            if (commandLine.EmbeddingModel is { } embeddingFolder)
            {
                var embedder = Qwen3.Net.Retrieval.Qwen3Embedder.Load(embeddingFolder, modelOptions);
                loaded.Add(embedder);
                if (commandLine.Warmup)
                {
                    WarmUp(app.Logger, "the embedding model", () => embedder.EmbedTokensAsync([WarmupPrompt]).GetAwaiter().GetResult());
                }

                string id = app.MapQwen3Embeddings(embedder, options);
                app.Logger.LogInformation("Serving embeddings of {Model} ({Dimensions} dimensions) at /v1/embeddings.", id, embedder.Dimensions);
            }

            if (commandLine.RerankerModel is { } rerankerFolder)
            {
                var reranker = Qwen3.Net.Retrieval.Qwen3Reranker.Load(rerankerFolder, modelOptions);
                loaded.Add(reranker);
                if (commandLine.Warmup)
                {
                    WarmUp(app.Logger, "the reranker", () => reranker.ScoreTokensAsync([WarmupPrompt]).GetAwaiter().GetResult());
                }

                string id = app.MapQwen3Rerank(reranker, options);
                app.Logger.LogInformation("Serving reranking by {Model} at /v1/rerank.", id);
            }
        }
        catch
        {
            loaded.ForEach(m => m.Dispose());
            throw;
        }

        loaded.ForEach(m => app.Lifetime.ApplicationStopped.Register(m.Dispose));
    }

    /// <summary>Looks for the repository's tests/fixtures/tiny-qwen3 above the executable and the working directory.</summary>
    private static string? FindBundledModel() =>
        new[] { AppContext.BaseDirectory, Environment.CurrentDirectory }
            .SelectMany(start => Ancestors(new DirectoryInfo(start)))
            .Select(dir => Path.Combine(dir.FullName, "tests", "fixtures", "tiny-qwen3"))
            .FirstOrDefault(candidate => File.Exists(Path.Combine(candidate, "config.json")));

    private static IEnumerable<DirectoryInfo> Ancestors(DirectoryInfo? dir)
    {
        for (; dir is not null; dir = dir.Parent)
        {
            yield return dir;
        }
    }
}
