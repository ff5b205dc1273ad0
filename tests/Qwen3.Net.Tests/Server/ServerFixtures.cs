using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Qwen3.Net.Retrieval;
using Qwen3.Net.ScriptedModel;
using Qwen3.Net.Server;
using Qwen3.Net.Tests.Loading;
using Qwen3.Net.Tests.Retrieval;

namespace Qwen3.Net.Tests.Server;

/// <summary>The server executable's app (<see cref="ServerHost"/>) with the tiny model, on a free loopback port.</summary>
public class ServerFixture : IAsyncLifetime
{
    internal ServerHost Host { get; private set; } = null!;

    public WebApplication App => Host.App;

    /// <summary>The chat model, for fixtures that serve one.</summary>
    public Qwen3Model Model => Host.Model!;

    public Uri BaseUri { get; private set; } = null!;

    /// <summary>The chat service, for fixtures that serve a chat model.</summary>
    public Qwen3OpenAIService Service => Host.Service!;

    public HttpClient Http { get; } = new();

    /// <summary>The command line, less the free port and two threads every fixture takes.</summary>
    protected virtual string[] Arguments => ["--model", Fixtures.TinyModelFolder];

    public async Task InitializeAsync()
    {
        Host = ServerHost.Build(ServerCommandLine.Parse([.. Arguments, "--port", "0", "--threads", "2"]));
        await App.StartAsync();
        BaseUri = new Uri(App.Urls.Single());
    }

    /// <summary>GETs <paramref name="path"/>, checks the status and returns the JSON answer.</summary>
    public Task<JsonElement> GetAsync(string path, HttpStatusCode status = HttpStatusCode.OK) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Get, new Uri(BaseUri, path)), status);

    /// <summary>POSTs the JSON <paramref name="body"/> to <paramref name="path"/>, checks the status and returns the JSON answer.</summary>
    public Task<JsonElement> PostAsync(string path, string body, HttpStatusCode status = HttpStatusCode.OK) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, new Uri(BaseUri, path)) { Content = new StringContent(body, Encoding.UTF8, "application/json") }, status);

    public virtual async Task DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Host.Model?.Dispose();
    }

    private async Task<JsonElement> SendAsync(HttpRequestMessage request, HttpStatusCode status)
    {
        using (request)
        using (var response = await Http.SendAsync(request))
        {
            string text = await response.Content.ReadAsStringAsync();
            response.StatusCode.Should().Be(status, text);
            return JsonDocument.Parse(text).RootElement.Clone();
        }
    }
}

/// <summary>
/// The server executable with <c>--embedding-model</c> and <c>--reranker-model</c> (the tiny model stands for both,
/// served as <c>tiny-qwen3</c>) beside the tiny chat model served as <see cref="ChatModelId"/>.
/// </summary>
public sealed class RetrievalServerFixture : ServerFixture
{
    public const string ChatModelId = "tiny-chat";

    /// <summary>The same models loaded in-process, for the expected values.</summary>
    public Qwen3Embedder Embedder { get; } = RetrievalFixtures.LoadEmbedder();

    public Qwen3Reranker Reranker { get; } = RetrievalFixtures.LoadReranker();

    protected override string[] Arguments =>
    [
        "--model", Fixtures.TinyModelFolder, "--served-model-name", ChatModelId,
        "--embedding-model", Fixtures.TinyModelFolder, "--reranker-model", Fixtures.TinyModelFolder,
    ];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Embedder.Dispose();
        Reranker.Dispose();
    }
}

/// <summary>The server executable with only <c>--embedding-model</c>: no chat model.</summary>
public sealed class EmbeddingOnlyServerFixture : ServerFixture
{
    protected override string[] Arguments => ["--embedding-model", Fixtures.TinyModelFolder];
}

/// <summary>The endpoints mapped into an app of the test's own (the library use), on a free loopback port.</summary>
public sealed class LibraryServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LibraryServer(WebApplication app, Qwen3Model model, Qwen3OpenAIService service)
    {
        _app = app;
        Model = model;
        Service = service;
        BaseUri = new Uri(app.Urls.Single());
    }

    public Qwen3Model Model { get; }

    public Qwen3OpenAIService Service { get; }

    public Uri BaseUri { get; }

    public static async Task<LibraryServer> StartAsync(Qwen3ModelOptions modelOptions, Qwen3ServerOptions options, string? folder = null)
    {
        var model = Qwen3Model.Load(folder ?? Fixtures.TinyModelFolder, modelOptions);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var service = app.MapQwen3OpenAI(model, options);
        await app.StartAsync();
        return new LibraryServer(app, model, service);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Model.Dispose();
    }
}

/// <summary>
/// A library-use server with an API key and small limits: one request at a time, a 64-token context, a 4 KiB body,
/// two tools, two stop strings, eight messages, JSON 16 deep.
/// </summary>
public sealed class LimitedServerFixture : IAsyncLifetime
{
    public const string ApiKey = "test-key";

    public static readonly Qwen3ServerOptions Options = new()
    {
        ApiKey = ApiKey,
        MaxConcurrentRequests = 1,
        ContextLength = 64,
        MaxRequestBodyBytes = 4096,
        MaxTools = 2,
        MaxStopStrings = 2,
        MaxMessages = 8,
        MaxJsonDepth = 16,
    };

    public LibraryServer Server { get; private set; } = null!;

    public HttpClient Http { get; } = new();

    public async Task InitializeAsync()
    {
        Server = await LibraryServer.StartAsync(new Qwen3ModelOptions { ThreadCount = 1 }, Options);
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>A library-use server on the scripted model (generated into a temporary folder), whose output follows <see cref="Script"/>.</summary>
public sealed class ScriptedServerFixture : IAsyncLifetime
{
    private readonly TempFolder _folder = new();

    public LibraryServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        ScriptedModelGenerator.Write(_folder.Path, Fixtures.TinyModelFolder);
        Server = await LibraryServer.StartAsync(new Qwen3ModelOptions { ThreadCount = 1 }, new Qwen3ServerOptions { ServedModelName = "scripted" }, _folder.Path);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _folder.Dispose();
    }
}
