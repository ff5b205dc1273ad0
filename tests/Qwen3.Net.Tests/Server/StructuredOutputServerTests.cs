using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Qwen3.Net.Tests.Server;

/// <summary><c>response_format</c> and forced <c>tool_choice</c> over HTTP, on the tiny random-weight model (whose free output never parses).</summary>
public sealed class StructuredOutputServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Schema = """{"type":"object","properties":{"city":{"type":"string","maxLength":6},"rain":{"type":"boolean"}},"required":["city","rain"],"additionalProperties":false}""";

    private const string Tools = """
        [{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":6}},"required":["city"]}}},
         {"type":"function","function":{"name":"add","description":"Adds","parameters":{"type":"object","properties":{"a":{"type":"integer","minimum":0,"maximum":9}},"required":["a"]}}}]
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_json_schema_response_format_gives_content_that_validates(bool stream)
    {
        int finished = 0;
        for (int seed = 0; seed < 4; seed++)
        {
            var (content, finishReason, _) = await Complete($$$$"""
                {"model":"tiny-qwen3","messages":[{"role":"user","content":"Weather?"}],"seed":{{{{seed}}}},"temperature":1,"max_tokens":40,"stream":{{{{(stream ? "true" : "false")}}}},
                 "enable_thinking":false,"response_format":{"type":"json_schema","json_schema":{"name":"weather","strict":true,"schema":{{{{Schema}}}}}}}
                """, stream);
            if (finishReason == "stop")
            {
                finished++;
                JsonSchema.FromText(Schema).Evaluate(JsonNode.Parse(content)).IsValid.Should().BeTrue(content);
            }
        }

        finished.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task A_json_object_response_format_gives_an_object()
    {
        var (content, finishReason, _) = await Complete("""
            {"model":"tiny-qwen3","messages":[{"role":"user","content":"JSON please"}],"seed":1,"temperature":1,"max_tokens":60,"enable_thinking":false,
             "response_format":{"type":"json_object"}}
            """, stream: false);
        if (finishReason == "stop")
        {
            JsonNode.Parse(content).Should().BeOfType<JsonObject>();
        }
        else
        {
            content.Should().StartWith("{");
        }
    }

    [Fact]
    public async Task Tool_choice_required_and_named_are_enforced()
    {
        var required = await Complete($$"""
            {"model":"tiny-qwen3","messages":[{"role":"user","content":"Use a tool"}],"seed":2,"temperature":1,"max_tokens":60,"enable_thinking":false,
             "tools":{{Tools}},"tool_choice":"required","parallel_tool_calls":false}
            """, stream: false);
        required.FinishReason.Should().Be("tool_calls");
        var call = required.Message.GetProperty("tool_calls").EnumerateArray().Should().ContainSingle().Subject.GetProperty("function");
        call.GetProperty("name").GetString().Should().BeOneOf("get_weather", "add");
        JsonNode.Parse(call.GetProperty("arguments").GetString()!).Should().BeOfType<JsonObject>();

        for (int seed = 0; seed < 3; seed++)
        {
            var named = await Complete($$$$"""
                {"model":"tiny-qwen3","messages":[{"role":"user","content":"Add"}],"seed":{{{{seed}}}},"temperature":1,"max_tokens":60,"enable_thinking":false,"stream":true,
                 "tools":{{{{Tools}}}},"tool_choice":{"type":"function","function":{"name":"add"}}}
                """, stream: true);
            named.FinishReason.Should().Be("tool_calls");
            foreach (var c in named.Message.GetProperty("tool_calls").EnumerateArray())
            {
                c.GetProperty("function").GetProperty("name").GetString().Should().Be("add");
                var arguments = JsonNode.Parse(c.GetProperty("function").GetProperty("arguments").GetString()!)!;
                arguments["a"]!.GetValue<int>().Should().BeInRange(0, 9);
            }
        }
    }

    [Fact]
    public async Task A_bad_schema_is_a_400_naming_the_schema_and_the_keyword()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(fixture.BaseUri, "v1/chat/completions"))
        {
            Content = new StringContent("""
                {"model":"tiny-qwen3","messages":[{"role":"user","content":"x"}],
                 "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"string","patternProperties":{}}}}}}}
                """, Encoding.UTF8, "application/json"),
        };
        using var response = await fixture.Http.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        error.GetProperty("type").GetString().Should().Be("invalid_request_error");
        error.GetProperty("param").GetString().Should().Be("response_format.json_schema.schema");
        error.GetProperty("message").GetString().Should().Contain("/properties/a/patternProperties").And.Contain("patternProperties");
    }

    /// <summary>Posts a completion; returns the message content (streamed deltas joined), the finish reason and the whole message.</summary>
    private async Task<(string Content, string FinishReason, JsonElement Message)> Complete(string body, bool stream)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(fixture.BaseUri, "v1/chat/completions"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        using var response = await fixture.Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, text);
        if (!stream)
        {
            using var json = JsonDocument.Parse(text);
            var choice = json.RootElement.GetProperty("choices")[0];
            var message = choice.GetProperty("message").Clone();
            string content = message.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
            return (content, choice.GetProperty("finish_reason").GetString()!, message);
        }

        // Rebuilds the message from the deltas: content concatenated, tool calls by index.
        var builder = new StringBuilder();
        var calls = new SortedDictionary<int, (string Name, StringBuilder Arguments)>();
        string? finish = null;
        foreach (var line in text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            if (chunk.RootElement.GetProperty("choices") is not { ValueKind: JsonValueKind.Array } choices || choices.GetArrayLength() == 0)
            {
                continue;
            }

            var choice = choices[0];
            var delta = choice.GetProperty("delta");
            if (delta.TryGetProperty("content", out var piece) && piece.ValueKind == JsonValueKind.String)
            {
                builder.Append(piece.GetString());
            }

            if (delta.TryGetProperty("tool_calls", out var deltaCalls))
            {
                foreach (var call in deltaCalls.EnumerateArray())
                {
                    int index = call.GetProperty("index").GetInt32();
                    var function = call.GetProperty("function");
                    if (!calls.TryGetValue(index, out var entry))
                    {
                        entry = (function.TryGetProperty("name", out var n) ? n.GetString()! : "", new StringBuilder());
                        calls[index] = entry;
                    }

                    if (function.TryGetProperty("arguments", out var a))
                    {
                        entry.Arguments.Append(a.GetString());
                    }
                }
            }

            if (choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String)
            {
                finish = f.GetString();
            }
        }

        var rebuilt = new JsonObject
        {
            ["content"] = builder.ToString(),
            ["tool_calls"] = new JsonArray([.. calls.Values.Select(c => (JsonNode)new JsonObject { ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = c.Arguments.ToString() } })]),
        };
        finish.Should().NotBeNull("the stream ends with a finish reason: {0}", text);
        return (builder.ToString(), finish!, JsonDocument.Parse(rebuilt.ToJsonString()).RootElement.Clone());
    }
}
