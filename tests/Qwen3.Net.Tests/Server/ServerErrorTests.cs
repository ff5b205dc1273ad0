using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

/// <summary>Every refusal the server documents, sent raw, with its status and OpenAI error body.</summary>
public sealed class ServerErrorTests : IClassFixture<LimitedServerFixture>
{
    private const string Hello = """{"role": "user", "content": "hi"}""";
    private readonly LimitedServerFixture _fixture;

    public ServerErrorTests(LimitedServerFixture fixture)
    {
        _fixture = fixture;
    }

    private Uri Completions => new(_fixture.Server.BaseUri, "v1/chat/completions");

    public static TheoryData<string, string?, string?> BadRequests => new()
    {
        { "{\"model\": ", null, null },
        { "[1, 2]", null, null },
        { "{\"messages\": [" + Hello + "]}", "model", null },
        { "{\"model\": \"tiny-qwen3\"}", "messages", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": []}", "messages", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": {}}", "messages", null },
        { "{\"model\": 7, \"messages\": [" + Hello + "]}", "model", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}", "messages[0].role", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"user\"}]}", "messages[0].content", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", "messages[0].content[0].type", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", "messages[0].tool_call_id", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}", "messages[0].content", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"temperature\": \"hot\"}", "temperature", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"temperature\": 2.5}", "temperature", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"top_p\": 0}", "top_p", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"top_k\": 1.5}", "top_k", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"min_p\": -0.1}", "min_p", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"presence_penalty\": 3}", "presence_penalty", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"repetition_penalty\": 0}", "repetition_penalty", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"frequency_penalty\": 0.5}", "frequency_penalty", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"max_tokens\": 0}", "max_tokens", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"max_completion_tokens\": 100000}", "max_completion_tokens", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"n\": 2}", "n", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"logprobs\": true}", "logprobs", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"top_logprobs\": 3}", "top_logprobs", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"stream\": \"yes\"}", "stream", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"stop\": [\"a\", \"b\", \"c\"]}", "stop", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"stop\": \"\"}", "stop", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"seed\": \"1\"}", "seed", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"response_format\": {\"type\": \"xml\"}}", "response_format.type", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"response_format\": {\"type\": \"json_schema\"}}", "response_format.json_schema", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"schema\": {}}}}", "response_format.json_schema.name", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"schema\": {\"not\": {}}}}}", "response_format.json_schema.schema", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"minProperties\": 1}}}], \"tool_choice\": \"required\"}", "tools", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"enable_thinking\": true, \"chat_template_kwargs\": {\"enable_thinking\": false}}", "enable_thinking", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tools\": [{\"type\": \"function\", \"function\": {}}]}", "tools[0].function.name", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tools\": [{\"type\": \"retrieval\"}]}", "tools[0].type", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tools\": [{}, {}, {}]}", "tools", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tool_choice\": \"sometimes\"}", "tool_choice", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"missing\"}}}", "tool_choice.function.name", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + string.Join(", ", Enumerable.Repeat(Hello, 9)) + "]}", "messages", null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"x\": " + new string('[', 20) + new string(']', 20) + "}", null, null },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"max_tokens\": 60}", "max_tokens", "context_length_exceeded" },
        { "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"user\", \"content\": \"" + string.Concat(Enumerable.Repeat("word ", 80)) + "\"}]}", "messages", "context_length_exceeded" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadRequestsGet400NamingTheField(string body, string? param, string? code)
    {
        var error = await SendAsync(Post(body), HttpStatusCode.BadRequest);
        error.GetProperty("type").GetString().Should().Be("invalid_request_error");
        error.GetProperty("param").GetString().Should().Be(param);
        error.GetProperty("code").GetString().Should().Be(code);
        error.GetProperty("message").GetString().Should().NotBeNullOrEmpty();
    }

    [Fact]
    public async Task UnknownFieldsAreIgnoredAndValidRequestsSucceed()
    {
        string body = "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"system\", \"content\": [{\"type\": \"text\", \"text\": \"Be brief.\"}]}, " + Hello +
            "], \"max_tokens\": 3, \"user\": \"u1\", \"metadata\": {\"a\": 1}, \"parallel_tool_calls\": true, \"frequency_penalty\": 0, \"logprobs\": false, " +
            "\"top_k\": -1, \"seed\": -5, \"stop\": [\"\\n\\n\"], \"chat_template_kwargs\": {\"enable_thinking\": false}, \"return_reasoning\": false}";
        using var response = await _fixture.Http.SendAsync(Post(body));
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("object").GetString().Should().Be("chat.completion");
        json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32().Should().BeInRange(1, 3);
    }

    [Fact]
    public async Task MissingOrWrongApiKeyGets401()
    {
        var noKey = Post("{}");
        noKey.Headers.Authorization = null;
        (await SendAsync(noKey, HttpStatusCode.Unauthorized, authorize: false)).GetProperty("code").GetString().Should().Be("invalid_api_key");

        var wrongKey = Post("{}");
        (await SendAsync(wrongKey, HttpStatusCode.Unauthorized, authorize: false, key: "wrong")).GetProperty("code").GetString().Should().Be("invalid_api_key");

        var models = new HttpRequestMessage(HttpMethod.Get, new Uri(_fixture.Server.BaseUri, "v1/models"));
        (await SendAsync(models, HttpStatusCode.Unauthorized, authorize: false)).GetProperty("code").GetString().Should().Be("invalid_api_key");
    }

    [Fact]
    public async Task UnknownModelAndRouteGet404()
    {
        (await SendAsync(Post("{\"model\": \"gpt-4o\", \"messages\": [" + Hello + "]}"), HttpStatusCode.NotFound))
            .GetProperty("code").GetString().Should().Be("model_not_found");
        (await SendAsync(new HttpRequestMessage(HttpMethod.Get, new Uri(_fixture.Server.BaseUri, "v1/models/gpt-4o")), HttpStatusCode.NotFound))
            .GetProperty("code").GetString().Should().Be("model_not_found");
        (await SendAsync(new HttpRequestMessage(HttpMethod.Post, new Uri(_fixture.Server.BaseUri, "v1/embeddings")), HttpStatusCode.NotFound))
            .GetProperty("code").GetString().Should().Be("unknown_url");
    }

    [Fact]
    public async Task OversizedBodyGets413WithOrWithoutContentLength()
    {
        string big = "{\"model\": \"tiny-qwen3\", \"messages\": [{\"role\": \"user\", \"content\": \"" + new string('a', 5000) + "\"}]}";
        (await SendAsync(Post(big), HttpStatusCode.RequestEntityTooLarge)).GetProperty("code").GetString().Should().Be("request_too_large");

        // Chunked: no Content-Length, so the limit is enforced while reading.
        var chunked = new HttpRequestMessage(HttpMethod.Post, Completions) { Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big))) };
        chunked.Headers.TransferEncodingChunked = true;
        (await SendAsync(chunked, HttpStatusCode.RequestEntityTooLarge)).GetProperty("code").GetString().Should().Be("request_too_large");
    }

    [Fact]
    public async Task RequestBeyondTheConcurrencyLimitGets429()
    {
        var scheduler = _fixture.Server.Model.Scheduler;
        scheduler.Hold(true);
        Task<HttpResponseMessage> first;
        try
        {
            first = _fixture.Http.SendAsync(Post("{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"max_tokens\": 2}"));
            await OpenAIClientTests.WaitForAsync(() => _fixture.Server.Service.RunningRequests == 1, "the first request must be generating");
            (await SendAsync(Post("{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "]}"), HttpStatusCode.TooManyRequests))
                .GetProperty("code").GetString().Should().Be("rate_limit_exceeded");
        }
        finally
        {
            scheduler.Hold(false);
        }

        using var response = await first;
        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task FullEngineQueueGets429()
    {
        await using var server = await LibraryServer.StartAsync(new Qwen3ModelOptions { ThreadCount = 1, MaxQueuedRequests = 1 }, new Qwen3ServerOptions());
        using var http = new HttpClient();
        string body = "{\"model\": \"tiny-qwen3\", \"messages\": [" + Hello + "], \"max_tokens\": 2}";
        server.Model.Scheduler.Hold(true);
        Task<HttpResponseMessage>[] requests;
        HttpResponseMessage refused;
        try
        {
            // Whichever reaches the engine second finds its one-place queue taken.
            requests = [.. Enumerable.Range(0, 2).Select(_ => http.PostAsync(new Uri(server.BaseUri, "v1/chat/completions"), new StringContent(body)))];
            refused = await await Task.WhenAny(requests);
        }
        finally
        {
            server.Model.Scheduler.Hold(false);
        }

        refused.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        error.RootElement.GetProperty("error").GetProperty("message").GetString().Should().Contain("queue is full");
        var responses = await Task.WhenAll(requests);
        responses.Select(r => r.StatusCode).Should().BeEquivalentTo([HttpStatusCode.OK, HttpStatusCode.TooManyRequests]);
    }

    private HttpRequestMessage Post(string body) =>
        new(HttpMethod.Post, Completions) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private async Task<JsonElement> SendAsync(HttpRequestMessage request, HttpStatusCode status, bool authorize = true, string? key = null)
    {
        using var http = new HttpClient();
        if (authorize || key is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key ?? LimitedServerFixture.ApiKey);
        }

        using var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(status, text);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/json");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("error").Clone();
    }
}
