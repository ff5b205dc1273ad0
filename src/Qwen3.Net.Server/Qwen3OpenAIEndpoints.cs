using Microsoft.AspNetCore.Routing;

namespace Qwen3.Net.Server;

/// <summary>Maps the OpenAI-compatible endpoints into an ASP.NET Core app.</summary>
public static class Qwen3OpenAIEndpoints
{
    /// <summary>
    /// Maps <c>POST /v1/chat/completions</c>, <c>GET /v1/models</c>, <c>GET /v1/models/{id}</c>, <c>GET /health</c>
    /// and an OpenAI-shaped 404 for other <c>/v1/</c> routes, served by <paramref name="model"/>. <c>/v1/models</c>
    /// also lists the embedding and reranker models mapped into the same app.
    /// </summary>
    /// <param name="endpoints">The app or route group.</param>
    /// <param name="model">The model; it must stay loaded while the app runs.</param>
    /// <param name="options">Served name, API key and limits; null for the defaults.</param>
    /// <returns>The service behind the endpoints, for its counters.</returns>
    /// <exception cref="InvalidOperationException">A chat model is already mapped into <paramref name="endpoints"/>.</exception>
    /// <exception cref="ArgumentException">The API key differs from that of the models already mapped there.</exception>
    public static Qwen3OpenAIService MapQwen3OpenAI(this IEndpointRouteBuilder endpoints, Qwen3Model model, Qwen3ServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Qwen3.Net.Server");
        var service = new Qwen3OpenAIService(model, options, logger);
        service.Registry = ServedModels.Add(endpoints, new ServedModel(service.ModelId, ModelKind.Chat, model, service.ContextLength), service.Options);
        endpoints.MapPost("/v1/chat/completions", service.HandleChatCompletionAsync);
        endpoints.MapGet("/health", service.HandleHealthAsync);
        endpoints.Map("/v1/{**rest}", Qwen3OpenAIService.WriteNotFoundAsync);
        return service;
    }
}
