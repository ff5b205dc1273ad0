using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Qwen3.Net.Retrieval;

namespace Qwen3.Net.Server;

/// <summary>Maps the embeddings and reranking endpoints into an ASP.NET Core app, beside or without the chat endpoints.</summary>
public static class Qwen3RetrievalEndpoints
{
    /// <summary>
    /// Maps <c>POST /v1/embeddings</c> (OpenAI's shape: <c>input</c> a string, a list of strings, a token list or a
    /// list of token lists; <c>dimensions</c>; <c>encoding_format</c> <c>float</c> or <c>base64</c>) served by
    /// <paramref name="embedder"/>, under the id <see cref="Qwen3ServerOptions.ServedModelName"/> or its folder's name.
    /// </summary>
    /// <param name="endpoints">The app or route group.</param>
    /// <param name="embedder">The embedding model; it must stay loaded while the app runs.</param>
    /// <param name="options">Served name, API key and limits; null for the defaults.</param>
    /// <returns>The id clients send in <c>model</c>.</returns>
    /// <exception cref="InvalidOperationException">An embedding model is already mapped into <paramref name="endpoints"/>.</exception>
    /// <exception cref="ArgumentException">The API key differs from that of the models already mapped there.</exception>
    public static string MapQwen3Embeddings(this IEndpointRouteBuilder endpoints, Qwen3Embedder embedder, Qwen3ServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(embedder);
        var service = new EmbeddingsService(embedder, options ?? new Qwen3ServerOptions(), Logger(endpoints));
        service.Register(endpoints);
        endpoints.MapPost("/v1/embeddings", service.HandleAsync);
        return service.ModelId;
    }

    /// <summary>
    /// Maps <c>POST /v1/rerank</c> and <c>POST /rerank</c> (the shape llama-server and vLLM accept: <c>query</c>,
    /// <c>documents</c>, <c>top_n</c>, optional <c>instruction</c> and <c>return_documents</c>; results by descending
    /// <c>relevance_score</c> with the document's <c>index</c>) served by <paramref name="reranker"/>.
    /// </summary>
    /// <param name="endpoints">The app or route group.</param>
    /// <param name="reranker">The reranker model; it must stay loaded while the app runs.</param>
    /// <param name="options">Served name, API key and limits; null for the defaults.</param>
    /// <returns>The id clients may send in <c>model</c>.</returns>
    /// <exception cref="InvalidOperationException">A reranker model is already mapped into <paramref name="endpoints"/>.</exception>
    /// <exception cref="ArgumentException">The API key differs from that of the models already mapped there.</exception>
    public static string MapQwen3Rerank(this IEndpointRouteBuilder endpoints, Qwen3Reranker reranker, Qwen3ServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(reranker);
        var service = new RerankService(reranker, options ?? new Qwen3ServerOptions(), Logger(endpoints));
        service.Register(endpoints);
        endpoints.MapPost("/v1/rerank", service.HandleAsync);
        endpoints.MapPost("/rerank", service.HandleAsync);
        return service.ModelId;
    }

    private static ILogger Logger(IEndpointRouteBuilder endpoints) =>
        endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Qwen3.Net.Server");
}

/// <summary>What the embeddings and rerank services share: the served id, the checks of every request, and the error answers.</summary>
internal abstract class RetrievalService(Qwen3Model model, Qwen3ServerOptions options, ILogger logger, ModelKind kind)
{
    private readonly string _endpoint = kind == ModelKind.Embeddings ? "embeddings" : "rerank";

    private ServedModels _registry = null!;

    private readonly byte[]? _apiKey = options.ApiKey is { } key ? Encoding.UTF8.GetBytes(key) : null;

    public string ModelId { get; } = options.ServedModelName ?? Path.GetFileName(model.Folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));

    protected Qwen3ServerOptions Options { get; } = options;

    protected Qwen3Model Model { get; } = model;

    /// <summary>Adds the model to the models of <paramref name="endpoints"/>, which <c>/v1/models</c> lists.</summary>
    public void Register(IEndpointRouteBuilder endpoints) =>
        _registry = ServedModels.Add(endpoints, new ServedModel(ModelId, kind, Model, Model.Config.MaxPositionEmbeddings), Options);

    public async Task HandleAsync(HttpContext http)
    {
        var aborted = http.RequestAborted;
        var clock = Stopwatch.StartNew();
        try
        {
            HttpExchange.Authorize(http, _apiKey);
            var body = await HttpExchange.ReadBodyAsync(http, Options.MaxRequestBodyBytes).ConfigureAwait(false);
            byte[] response;
            using (var document = ChatRequestParser.ParseBody(body, Options.MaxJsonDepth))
            {
                var root = document.RootElement;
                if (ChatRequestParser.Optional(root, "model", out var model) && ChatRequestParser.ReadString(model, "model") is var id && id != ModelId)
                {
                    throw _registry.Refuse(kind, id);
                }

                response = await RunAsync(root, aborted).ConfigureAwait(false);
            }

            await HttpExchange.WriteJsonAsync(http, 200, response).ConfigureAwait(false);
            logger.LogInformation("{Endpoint}: {Bytes} bytes answered in {TotalMs:F0} ms", _endpoint, response.Length, clock.Elapsed.TotalMilliseconds);
        }
        catch (OpenAIException e)
        {
            logger.LogInformation("{Endpoint} refused: {Status} {Code} {Param}: {Message}", _endpoint, e.Status, e.Code ?? e.Type, e.Param, e.Message);
            await HttpExchange.WriteErrorAsync(http, e).ConfigureAwait(false);
        }
        catch (QueueFullException e)
        {
            await HttpExchange.WriteErrorAsync(http, OpenAIException.Busy(e.Message)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client went away; its evaluations stopped with the request and there is no one to answer.
        }
        catch (Exception e) when (!http.Response.HasStarted && !aborted.IsCancellationRequested)
        {
            logger.LogError(e, "{Endpoint} failed", _endpoint);
            await HttpExchange.WriteErrorAsync(http, new OpenAIException(StatusCodes.Status500InternalServerError, "The server failed to run the request.", "server_error")).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the parsed request and returns the response body.</summary>
    protected abstract Task<byte[]> RunAsync(JsonElement root, CancellationToken aborted);

    protected static void WriteUsage(Utf8JsonWriter w, long tokens)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", tokens);
        w.WriteNumber("total_tokens", tokens);
        w.WriteEndObject();
    }
}

/// <summary><c>POST /v1/embeddings</c>.</summary>
internal sealed class EmbeddingsService(Qwen3Embedder embedder, Qwen3ServerOptions options, ILogger logger)
    : RetrievalService(embedder.Model, options, logger, ModelKind.Embeddings)
{
    protected override async Task<byte[]> RunAsync(JsonElement root, CancellationToken aborted)
    {
        var (inputs, dimensions, base64) = EmbeddingsRequest.Parse(root, Options, new RetrievalModelLimits(Model.Config.VocabSize, Model.Config.MaxPositionEmbeddings, embedder.Dimensions), embedder.Tokenize);
        float[][] vectors = await embedder.EmbedTokensAsync(inputs, dimensions, aborted).ConfigureAwait(false);
        return TurnAccumulator.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (base64)
                {
                    // OpenAI's base64 is the float32 values' little-endian bytes.
                    var bytes = new byte[vectors[i].Length * sizeof(float)];
                    for (int k = 0; k < vectors[i].Length; k++)
                    {
                        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(k * sizeof(float)), vectors[i][k]);
                    }

                    w.WriteBase64String("embedding", bytes);
                }
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (float v in vectors[i])
                    {
                        w.WriteNumberValue(v);
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("model", ModelId);
            WriteUsage(w, inputs.Sum(input => (long)input.Length));
            w.WriteEndObject();
        });
    }
}

/// <summary><c>POST /v1/rerank</c> and <c>POST /rerank</c>.</summary>
internal sealed class RerankService(Qwen3Reranker reranker, Qwen3ServerOptions options, ILogger logger)
    : RetrievalService(reranker.Model, options, logger, ModelKind.Rerank)
{
    protected override async Task<byte[]> RunAsync(JsonElement root, CancellationToken aborted)
    {
        var (documents, prompts, topN, returnDocuments) = RerankRequest.Parse(root, Options, Model.Config.MaxPositionEmbeddings, reranker.EncodePair);
        double[] scores = await reranker.ScoreTokensAsync(prompts, aborted).ConfigureAwait(false);
        var ranked = Qwen3Reranker.Rank(scores, topN);
        return TurnAccumulator.Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", $"rerank-{Guid.NewGuid():N}");
            w.WriteString("object", "list");
            w.WriteString("model", ModelId);
            w.WriteStartArray("results");
            foreach (var r in ranked)
            {
                w.WriteStartObject();
                w.WriteNumber("index", r.Index);
                w.WriteNumber("relevance_score", r.Score);
                if (returnDocuments)
                {
                    w.WriteStartObject("document");
                    w.WriteString("text", documents[r.Index]);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            WriteUsage(w, prompts.Sum(p => (long)p.Length));
            w.WriteEndObject();
        });
    }
}
