using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Embeddings;
using Qwen3.Net.Retrieval;
using Qwen3.Net.Server;
using Qwen3.Net.Tests.Retrieval;

namespace Qwen3.Net.Tests.Server;

public sealed class RetrievalServerTests(RetrievalServerFixture server) : IClassFixture<RetrievalServerFixture>
{
    private static readonly string[] Texts = ["The capital of France is Paris.", "x", string.Join(' ', Enumerable.Repeat("long document", 200))];

    [Fact]
    public async Task The_OpenAI_client_through_Microsoft_Extensions_AI_gets_the_in_process_embeddings()
    {
        var client = new EmbeddingClient("tiny-qwen3", new ApiKeyCredential("EMPTY"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseUri, "v1") });
        using IEmbeddingGenerator<string, Embedding<float>> generator = client.AsIEmbeddingGenerator();

        var full = await generator.GenerateAsync(Texts);
        var cut = await generator.GenerateAsync(Texts, new Microsoft.Extensions.AI.EmbeddingGenerationOptions { Dimensions = 32 });

        float[][] expected = await server.Embedder.EmbedAsync(Texts);
        float[][] expectedCut = await server.Embedder.EmbedAsync(Texts, dimensions: 32);
        full.Should().HaveCount(3);
        for (int i = 0; i < Texts.Length; i++)
        {
            AssertClose(full[i].Vector.ToArray(), expected[i]);
            AssertClose(cut[i].Vector.ToArray(), expectedCut[i]);
        }

        full.Usage!.InputTokenCount.Should().Be(Texts.Sum(t => server.Embedder.Tokenize(t).Length));
    }

    [Fact]
    public async Task Float_and_base64_encodings_carry_the_same_vector_and_token_lists_are_taken_as_given()
    {
        int[] tokens = server.Embedder.Tokenize("hello world");
        var asFloat = await PostOkAsync("/v1/embeddings", new JsonObject { ["model"] = "tiny-qwen3", ["input"] = "hello world", ["encoding_format"] = "float" });
        var asBase64 = await PostOkAsync("/v1/embeddings", new JsonObject { ["model"] = "tiny-qwen3", ["input"] = "hello world", ["encoding_format"] = "base64" });
        var asTokens = await PostOkAsync("/v1/embeddings", new JsonObject { ["model"] = "tiny-qwen3", ["input"] = new JsonArray([.. tokens.Select(t => (JsonNode)t)]) });

        asFloat.GetProperty("object").GetString().Should().Be("list");
        asFloat.GetProperty("model").GetString().Should().Be("tiny-qwen3");
        var item = asFloat.GetProperty("data")[0];
        item.GetProperty("object").GetString().Should().Be("embedding");
        item.GetProperty("index").GetInt32().Should().Be(0);
        float[] vector = item.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        byte[] bytes = Convert.FromBase64String(asBase64.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        float[] decoded = Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, i * 4)).ToArray();

        decoded.Should().Equal(vector);
        AssertClose(vector, await server.Embedder.EmbedAsync("hello world"));
        asTokens.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).Should().Equal(vector);
        asFloat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32().Should().Be(tokens.Length);
        asFloat.GetProperty("usage").GetProperty("total_tokens").GetInt32().Should().Be(tokens.Length);
    }

    [Theory]
    [InlineData("""{"model":"tiny-qwen3","input":""}""", "input")]
    [InlineData("""{"model":"tiny-qwen3","input":[]}""", "input")]
    [InlineData("""{"model":"tiny-qwen3","input":["ok",""]}""", "input[1]")]
    [InlineData("""{"model":"tiny-qwen3","input":[[1,2],[]]}""", "input[1]")]
    [InlineData("""{"model":"tiny-qwen3","input":[151936]}""", "input")]
    [InlineData("""{"model":"tiny-qwen3","input":42}""", "input")]
    [InlineData("""{"model":"tiny-qwen3"}""", "input")]
    [InlineData("""{"input":"x"}""", "model")]
    [InlineData("""{"model":"tiny-qwen3","input":"x","dimensions":0}""", "dimensions")]
    [InlineData("""{"model":"tiny-qwen3","input":"x","dimensions":97}""", "dimensions")]
    [InlineData("""{"model":"tiny-qwen3","input":"x","encoding_format":"int8"}""", "encoding_format")]
    public async Task Bad_embedding_requests_get_a_400_naming_the_field(string body, string param)
    {
        var error = await PostErrorAsync("/v1/embeddings", body, HttpStatusCode.BadRequest);
        error.GetProperty("param").GetString().Should().Be(param);
        error.GetProperty("type").GetString().Should().Be("invalid_request_error");
    }

    [Fact]
    public async Task Inputs_past_the_context_and_too_many_inputs_are_refused()
    {
        int limit = server.Embedder.MaxInputTokens;
        string tooLong = JsonSerializer.Serialize(new { model = "tiny-qwen3", input = new[] { new int[limit + 1] } });
        var error = await PostErrorAsync("/v1/embeddings", tooLong, HttpStatusCode.BadRequest);
        error.GetProperty("code").GetString().Should().Be("context_length_exceeded");
        error.GetProperty("param").GetString().Should().Be("input[0]");

        string tooMany = JsonSerializer.Serialize(new { model = "tiny-qwen3", input = Enumerable.Repeat("a", new Qwen3ServerOptions().MaxEmbeddingInputs + 1) });
        (await PostErrorAsync("/v1/embeddings", tooMany, HttpStatusCode.BadRequest)).GetProperty("message").GetString().Should().Contain("at most 2048");
    }

    [Fact]
    public async Task Another_model_name_is_a_404()
    {
        var error = await PostErrorAsync("/v1/embeddings", """{"model":"text-embedding-3-small","input":"x"}""", HttpStatusCode.NotFound);
        error.GetProperty("code").GetString().Should().Be("model_not_found");
        error.GetProperty("param").GetString().Should().Be("model");
        error.GetProperty("message").GetString().Should().Contain("'tiny-qwen3' (embedding)");
    }

    [Fact]
    public async Task The_model_list_has_every_served_model_once_with_what_it_serves()
    {
        var list = await GetOkAsync("/v1/models");

        list.GetProperty("object").GetString().Should().Be("list");
        var models = list.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        models.Keys.Should().BeEquivalentTo(RetrievalServerFixture.ChatModelId, "tiny-qwen3");
        Capabilities(models[RetrievalServerFixture.ChatModelId]).Should().Equal("chat");
        Capabilities(models["tiny-qwen3"]).Should().Equal("embeddings", "rerank");
        models["tiny-qwen3"].GetProperty("object").GetString().Should().Be("model");
        models["tiny-qwen3"].GetProperty("max_model_len").GetInt32().Should().Be(server.Embedder.Model.Config.MaxPositionEmbeddings);

        var one = await GetOkAsync("/v1/models/tiny-qwen3");
        one.GetProperty("id").GetString().Should().Be("tiny-qwen3");
        Capabilities(one).Should().Equal("embeddings", "rerank");

        using var missing = await server.Http.GetAsync(new Uri(server.BaseUri, "/v1/models/gpt-4o"));
        missing.StatusCode.Should().Be(HttpStatusCode.NotFound);
        JsonDocument.Parse(await missing.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("param").GetString().Should().Be("model");
    }

    [Fact]
    public async Task An_app_maps_one_model_of_each_kind_under_one_api_key()
    {
        await using var app = WebApplication.CreateSlimBuilder().Build();
        app.MapQwen3Embeddings(server.Embedder);

        FluentActions.Invoking(() => app.MapQwen3Embeddings(server.Embedder)).Should().Throw<InvalidOperationException>().WithMessage("*already serves 'tiny-qwen3'*");
        FluentActions.Invoking(() => app.MapQwen3Rerank(server.Reranker, new Qwen3ServerOptions { ApiKey = "other" })).Should().Throw<ArgumentException>().WithMessage("*same ApiKey*");
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"tiny-qwen3","messages":[{"role":"user","content":"hi"}]}""", "/v1/embeddings")]
    [InlineData("/v1/embeddings", """{"model":"tiny-chat","input":"x"}""", "/v1/chat/completions")]
    [InlineData("/v1/rerank", """{"model":"tiny-chat","query":"q","documents":["d"]}""", "/v1/chat/completions")]
    public async Task A_model_of_another_kind_is_a_400_naming_the_model_field_and_where_that_model_is_served(string path, string body, string servedAt)
    {
        var error = await PostErrorAsync(path, body, HttpStatusCode.BadRequest);

        error.GetProperty("param").GetString().Should().Be("model");
        error.GetProperty("code").GetString().Should().Be("model_not_supported");
        error.GetProperty("message").GetString().Should().Contain($"served at POST {servedAt}");
    }

    [Fact]
    public async Task Rerank_returns_indices_and_the_in_process_scores_best_first()
    {
        string[] documents = ["Paris is the capital of France.", "Bananas are yellow.", "The Eiffel tower is in Paris."];
        var response = await PostOkAsync("/v1/rerank", new JsonObject
        {
            ["model"] = "tiny-qwen3",
            ["query"] = "capital of France",
            ["documents"] = new JsonArray([.. documents.Select(d => (JsonNode)d)]),
            ["top_n"] = 2,
            ["return_documents"] = true,
        });

        var expected = await server.Reranker.RerankAsync("capital of France", documents, topN: 2);
        var results = response.GetProperty("results").EnumerateArray().ToArray();
        results.Should().HaveCount(2);
        for (int i = 0; i < 2; i++)
        {
            results[i].GetProperty("index").GetInt32().Should().Be(expected[i].Index);
            results[i].GetProperty("relevance_score").GetDouble().Should().BeApproximately(expected[i].Score, 1e-6);
            results[i].GetProperty("document").GetProperty("text").GetString().Should().Be(documents[expected[i].Index]);
        }

        int tokens = documents.Sum(d => server.Reranker.EncodePair("capital of France", d).Length);
        response.GetProperty("usage").GetProperty("total_tokens").GetInt32().Should().Be(tokens);

        // llama-server's path and Cohere's document objects, without a model name.
        var plain = await PostOkAsync("/rerank", new JsonObject { ["query"] = "q", ["documents"] = new JsonArray(new JsonObject { ["text"] = "d" }) });
        plain.GetProperty("results")[0].GetProperty("relevance_score").GetDouble().Should().BeApproximately(await server.Reranker.ScoreAsync("q", "d"), 1e-6);
    }

    [Theory]
    [InlineData("""{"query":"q","documents":[]}""", "documents")]
    [InlineData("""{"query":"q"}""", "documents")]
    [InlineData("""{"documents":["d"]}""", "query")]
    [InlineData("""{"query":"q","documents":"d"}""", "documents")]
    [InlineData("""{"query":"q","documents":["d",3]}""", "documents[1]")]
    [InlineData("""{"query":"q","documents":["d"],"top_n":0}""", "top_n")]
    public async Task Bad_rerank_requests_get_a_400_naming_the_field(string body, string param)
    {
        (await PostErrorAsync("/v1/rerank", body, HttpStatusCode.BadRequest)).GetProperty("param").GetString().Should().Be(param);
    }

    [Fact]
    public async Task Too_many_documents_or_a_document_past_the_context_are_refused()
    {
        string tooMany = JsonSerializer.Serialize(new { query = "q", documents = Enumerable.Repeat("d", new Qwen3ServerOptions().MaxRerankDocuments + 1) });
        (await PostErrorAsync("/v1/rerank", tooMany, HttpStatusCode.BadRequest)).GetProperty("message").GetString().Should().Contain("at most 1024");

        string huge = string.Concat(Enumerable.Repeat("word ", server.Reranker.Model.Config.MaxPositionEmbeddings));
        string tooLong = JsonSerializer.Serialize(new { query = "q", documents = new[] { "short", huge } });
        var error = await PostErrorAsync("/v1/rerank", tooLong, HttpStatusCode.BadRequest);
        error.GetProperty("code").GetString().Should().Be("context_length_exceeded");
        error.GetProperty("param").GetString().Should().Be("documents[1]");
    }

    [Fact]
    public void The_command_line_takes_the_retrieval_model_folders()
    {
        var line = ServerCommandLine.Parse(["--embedding-model", "e", "--reranker-model", "r"]);
        line.EmbeddingModel.Should().Be("e");
        line.RerankerModel.Should().Be("r");
        ServerCommandLine.Usage.Should().Contain("--embedding-model").And.Contain("--reranker-model");
    }

    private static void AssertClose(float[] actual, float[] expected)
    {
        actual.Should().HaveCount(expected.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Math.Abs(actual[i] - expected[i]).Should().BeLessThanOrEqualTo(1e-5f, $"element {i}");
        }
    }

    private static IEnumerable<string> Capabilities(JsonElement model) => model.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()!);

    private Task<JsonElement> GetOkAsync(string path) => server.GetAsync(path);

    private Task<JsonElement> PostOkAsync(string path, JsonObject body) => server.PostAsync(path, body.ToJsonString());

    private async Task<JsonElement> PostErrorAsync(string path, string body, HttpStatusCode status) =>
        (await server.PostAsync(path, body, status)).GetProperty("error");
}

/// <summary>A server given only <c>--embedding-model</c> serves embeddings and loads no chat model.</summary>
public sealed class EmbeddingOnlyServerTests(EmbeddingOnlyServerFixture server) : IClassFixture<EmbeddingOnlyServerFixture>
{
    [Fact]
    public async Task It_serves_embeddings_and_lists_only_the_embedding_model()
    {
        server.Host.Model.Should().BeNull("no chat model is loaded");
        var embedding = await server.PostAsync("/v1/embeddings", """{"model":"tiny-qwen3","input":"hello"}""");
        embedding.GetProperty("data")[0].GetProperty("embedding").GetArrayLength().Should().Be(96);

        var models = (await server.GetAsync("/v1/models")).GetProperty("data").EnumerateArray().ToArray();
        models.Should().ContainSingle().Which.GetProperty("id").GetString().Should().Be("tiny-qwen3");
        models[0].GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()).Should().Equal("embeddings");
        (await server.GetAsync("/health")).GetProperty("status").GetString().Should().Be("ok");
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"Qwen3-1.7B","messages":[{"role":"user","content":"hi"}]}""", "no chat model")]
    [InlineData("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""", "no chat model")]
    [InlineData("/v1/rerank", """{"query":"q","documents":["d"]}""", "no reranker model")]
    public async Task Requests_for_a_kind_it_does_not_serve_are_a_404_model_not_found(string path, string body, string message)
    {
        var error = (await server.PostAsync(path, body, HttpStatusCode.NotFound)).GetProperty("error");

        error.GetProperty("code").GetString().Should().Be("model_not_found");
        error.GetProperty("param").GetString().Should().Be("model");
        error.GetProperty("message").GetString().Should().Contain(message).And.Contain("'tiny-qwen3' (embedding)");
    }

    [Fact]
    public async Task The_embedding_model_named_at_the_chat_endpoint_is_a_400_saying_where_it_is_served()
    {
        var error = (await server.PostAsync("/v1/chat/completions", """{"model":"tiny-qwen3","messages":[]}""", HttpStatusCode.BadRequest)).GetProperty("error");

        error.GetProperty("code").GetString().Should().Be("model_not_supported");
        error.GetProperty("message").GetString().Should().Contain("served at POST /v1/embeddings");
    }
}
