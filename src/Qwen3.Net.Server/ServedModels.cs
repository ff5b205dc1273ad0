using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.AspNetCore.Routing;

namespace Qwen3.Net.Server;

/// <summary>What a served model answers: chat completions, embeddings or reranking.</summary>
internal enum ModelKind
{
    Chat,
    Embeddings,
    Rerank,
}

/// <summary>One model an app serves: its id, its kind and the longest input it takes.</summary>
internal sealed record ServedModel(string Id, ModelKind Kind, Qwen3Model Model, int MaxModelLength);

/// <summary>
/// The models mapped into one app or route group: <c>GET /v1/models</c> lists them all, and a request naming a model
/// of another kind, or a kind that no model here serves, is told which model serves what.
/// </summary>
internal sealed class ServedModels
{
    // One registry per route builder, so every Map call on the same app adds to the same list.
    private static readonly ConditionalWeakTable<IEndpointRouteBuilder, ServedModels> Registries = [];

    private readonly byte[]? _apiKey;
    private volatile ServedModel[] _models = [];

    private ServedModels(Qwen3ServerOptions options)
    {
        Options = options;
        _apiKey = options.ApiKey is { } key ? Encoding.UTF8.GetBytes(key) : null;
    }

    /// <summary>The options of the first model mapped: its API key and body limits guard the registry's own endpoints.</summary>
    public Qwen3ServerOptions Options { get; }

    public IReadOnlyList<ServedModel> Models => _models;

    /// <summary>
    /// Adds <paramref name="model"/> to the registry of <paramref name="endpoints"/>, mapping <c>GET /v1/models</c>
    /// and <c>GET /v1/models/{id}</c> with the first model.
    /// </summary>
    /// <exception cref="InvalidOperationException">A model of the same kind is already mapped there.</exception>
    /// <exception cref="ArgumentException">The API key differs from that of the models mapped before.</exception>
    public static ServedModels Add(IEndpointRouteBuilder endpoints, ServedModel model, Qwen3ServerOptions options)
    {
        lock (Registries)
        {
            if (!Registries.TryGetValue(endpoints, out var registry))
            {
                registry = new ServedModels(options);
                Registries.Add(endpoints, registry);
                endpoints.MapGet("/v1/models", registry.HandleModelsAsync);
                endpoints.MapGet("/v1/models/{id}", registry.HandleModelsAsync);
            }

            if (registry._models.FirstOrDefault(m => m.Kind == model.Kind) is { } mapped)
            {
                throw new InvalidOperationException($"POST {Route(model.Kind)} already serves '{mapped.Id}'; map one {Noun(model.Kind)} model per app or route group.");
            }

            if (options.ApiKey != registry.Options.ApiKey)
            {
                throw new ArgumentException("Every model mapped into one app or route group must have the same ApiKey, since /v1/models lists them all.", nameof(options));
            }

            registry._models = [.. registry._models, model];
            return registry;
        }
    }

    /// <summary>The registry of <paramref name="endpoints"/>, or null when no model is mapped there.</summary>
    public static ServedModels? Of(IEndpointRouteBuilder endpoints)
    {
        lock (Registries)
        {
            return Registries.TryGetValue(endpoints, out var registry) ? registry : null;
        }
    }

    /// <summary>The route a kind of model is served at.</summary>
    public static string Route(ModelKind kind) => kind switch
    {
        ModelKind.Chat => "/v1/chat/completions",
        ModelKind.Embeddings => "/v1/embeddings",
        _ => "/v1/rerank",
    };

    /// <summary>
    /// Maps, for each kind of model not served here, its route to a handler that answers 404 <c>model_not_found</c>
    /// (or 400 <c>model_not_supported</c> when the request names a model of another kind), instead of an unknown route.
    /// </summary>
    public void MapUnservedKinds(IEndpointRouteBuilder endpoints)
    {
        foreach (var kind in Enum.GetValues<ModelKind>().Where(k => _models.All(m => m.Kind != k)))
        {
            endpoints.MapPost(Route(kind), http => HandleUnservedAsync(http, kind));
        }
    }

    /// <summary>The error for a request to the <paramref name="kind"/> endpoint that names <paramref name="requested"/>, which that endpoint does not serve.</summary>
    public OpenAIException Refuse(ModelKind kind, string? requested)
    {
        var models = _models;
        var own = models.FirstOrDefault(m => m.Kind == kind);
        var other = requested is null ? null : models.FirstOrDefault(m => m.Id == requested);
        string serves = own is null ? $"this server serves no {Noun(kind)} model" : $"it serves '{own.Id}'";
        if (other is not null)
        {
            return OpenAIException.Invalid(
                $"The model '{requested}' is {Article(other.Kind)} model, served at POST {Route(other.Kind)}, not at POST {Route(kind)}: {serves}.",
                "model", "model_not_supported");
        }

        string listed = string.Join(", ", models.Select(m => $"'{m.Id}' ({Noun(m.Kind)})"));
        return requested is null
            ? OpenAIException.NotFound($"POST {Route(kind)}: {serves}; the models here are {listed}.", "model_not_found", "model")
            : OpenAIException.NotFound($"The model '{requested}' does not exist at POST {Route(kind)}: {serves}; the models here are {listed}.", "model_not_found", "model");
    }

    private static string Noun(ModelKind kind) => kind switch
    {
        ModelKind.Chat => "chat",
        ModelKind.Embeddings => "embedding",
        _ => "reranker",
    };

    private static string Article(ModelKind kind) => kind == ModelKind.Embeddings ? "an embedding" : $"a {Noun(kind)}";

    private async Task HandleModelsAsync(HttpContext http)
    {
        try
        {
            HttpExchange.Authorize(http, _apiKey);
            string? id = http.GetRouteValue("id") as string;
            // One entry per id: a folder served both as the chat and the embedding model is one model with two capabilities.
            var entries = _models.GroupBy(m => m.Id).Where(g => id is null || g.Key == id).ToList();
            if (id is not null && entries.Count == 0)
            {
                string listed = string.Join(", ", _models.Select(m => $"'{m.Id}'"));
                throw OpenAIException.NotFound($"The model '{id}' does not exist; the models here are {listed}.", "model_not_found", "model");
            }

            await HttpExchange.WriteJsonAsync(http, 200, TurnAccumulator.Write(w =>
            {
                if (id is null)
                {
                    w.WriteStartObject();
                    w.WriteString("object", "list");
                    w.WriteStartArray("data");
                }

                foreach (var entry in entries)
                {
                    var first = entry.First();
                    string folder = first.Model.Folder;
                    string modelFile = File.Exists(folder) ? folder : Path.Combine(folder, "config.json");
                    w.WriteStartObject();
                    w.WriteString("id", entry.Key);
                    w.WriteString("object", "model");
                    w.WriteNumber("created", new DateTimeOffset(File.GetLastWriteTimeUtc(modelFile)).ToUnixTimeSeconds());
                    w.WriteString("owned_by", "qwen3-net");
                    w.WriteNumber("max_model_len", first.MaxModelLength);
                    w.WriteStartArray("capabilities");
                    foreach (var model in entry)
                    {
                        w.WriteStringValue(model.Kind switch { ModelKind.Chat => "chat", ModelKind.Embeddings => "embeddings", _ => "rerank" });
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                }

                if (id is null)
                {
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
            })).ConfigureAwait(false);
        }
        catch (OpenAIException e)
        {
            await HttpExchange.WriteErrorAsync(http, e).ConfigureAwait(false);
        }
    }

    private async Task HandleUnservedAsync(HttpContext http, ModelKind kind)
    {
        try
        {
            HttpExchange.Authorize(http, _apiKey);
            var body = await HttpExchange.ReadBodyAsync(http, Options.MaxRequestBodyBytes).ConfigureAwait(false);
            using var document = ChatRequestParser.ParseBody(body, Options.MaxJsonDepth);
            string? requested = ChatRequestParser.Optional(document.RootElement, "model", out var model) ? ChatRequestParser.ReadString(model, "model") : null;
            throw Refuse(kind, requested);
        }
        catch (OpenAIException e)
        {
            await HttpExchange.WriteErrorAsync(http, e).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away while its request was read; there is no one to answer.
        }
    }
}
