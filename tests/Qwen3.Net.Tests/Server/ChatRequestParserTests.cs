using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qwen3.Net.Chat;
using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

public sealed class ChatRequestParserTests
{
    private const string Hello = """{"role": "user", "content": "hi"}""";
    private static readonly ChatRequestParser Parser = new(new Qwen3ServerOptions { MaxJsonDepth = 32, MaxMessages = 64, MaxTools = 8 });

    private static readonly string[] Seeds =
    [
        """{"model": "m", "messages": [{"role": "user", "content": "hi"}]}""",
        """
        {"model": "m", "stream": true, "stream_options": {"include_usage": true}, "temperature": 0.5, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
         "presence_penalty": 1.5, "repetition_penalty": 1.1, "seed": 42, "max_tokens": 64, "stop": ["\n\n", "END"], "n": 1,
         "enable_thinking": false, "return_reasoning": false, "chat_template_kwargs": {"enable_thinking": false},
         "messages": [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, {"role": "user", "content": "What is the weather in Paris?"},
           {"role": "assistant", "content": null, "reasoning_content": "I should call the tool.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
           {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"}],
         "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
         "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
        """,
        """
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": false,
         "response_format": {"type": "json_schema", "json_schema": {"name": "n", "strict": true, "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}}
        """,
    ];

    [Fact]
    public void ReadsEveryFieldOfAFullRequest()
    {
        var request = Parser.Parse(Encoding.UTF8.GetBytes(Seeds[1]));

        request.Stream.Should().BeTrue();
        request.IncludeUsage.Should().BeTrue();
        request.Thinking.Should().Be(ThinkingMode.Disabled);
        request.ReturnReasoning.Should().BeFalse();
        request.Stop.Should().Equal("\n\n", "END");
        request.Tools.Should().ContainSingle().Which.Name.Should().Be("get_weather");
        request.Messages.Select(m => m.Role).Should().Equal(MessageRole.System, MessageRole.User, MessageRole.Assistant, MessageRole.Tool);
        request.Messages[0].Content.Should().Be("Be brief.");
        var assistant = request.Messages[2];
        assistant.Content.Should().BeEmpty();
        assistant.ReasoningContent.Should().Be("I should call the tool.");
        assistant.ToolCalls.Should().ContainSingle().Which.Should().Be(ToolCall.FromRawArguments("get_weather", """{"city": "Paris"}"""));

        var sampling = request.ToSampling(64);
        sampling.Should().Be(SamplingOptions.ForNonThinking with
        {
            Temperature = 0.5f, TopP = 0.9f, TopK = 20, MinP = 0.05f, PresencePenalty = 1.5f, RepetitionPenalty = 1.1f, Seed = 42,
            MaxNewTokens = 64, StopStrings = ["\n\n", "END"],
        });
    }

    [Theory]
    [InlineData("", ThinkingMode.Enabled)]
    [InlineData(""", "enable_thinking": false""", ThinkingMode.Disabled)]
    [InlineData(""", "chat_template_kwargs": {"enable_thinking": false}""", ThinkingMode.Disabled)]
    [InlineData(""", "chat_template_kwargs": {"enable_thinking": true}""", ThinkingMode.Enabled)]
    public void ThinkingFollowsEitherFlagAndSamplingDefaultsFollowTheMode(string extra, ThinkingMode expected)
    {
        var request = Parser.Parse(Encoding.UTF8.GetBytes($$"""{"model": "m", "messages": [{{Hello}}]{{extra}}}"""));
        request.Thinking.Should().Be(expected);
        request.ToSampling(100).Should().Be(SamplingOptions.For(expected == ThinkingMode.Enabled) with { MaxNewTokens = 100 });
    }

    [Fact]
    public void ToolChoiceNoneRendersNoToolsAndRequiredRendersThem()
    {
        const string tools = """[{"type": "function", "function": {"name": "f"}}]""";
        Parser.Parse(Encoding.UTF8.GetBytes($$"""{"model": "m", "messages": [{{Hello}}], "tools": {{tools}}, "tool_choice": "none"}""")).Tools.Should().BeEmpty();
        Parser.Parse(Encoding.UTF8.GetBytes($$"""{"model": "m", "messages": [{{Hello}}], "tools": {{tools}}, "tool_choice": "required"}""")).Tools.Should().ContainSingle();
    }

    /// <summary>An escaped lone surrogate in a property name makes every lookup in its object throw; found by the server-request fuzz target.</summary>
    [Theory]
    [InlineData("""{"model": "m", "m\ud800essages": [], "messages": [{"role": "user", "content": "hi"}]}""")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "hi", "\udc00": 1}]}""")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x\ud800y": {}}}}]}""")]
    public void APropertyNameWithALoneSurrogateIsA400(string body)
    {
        FluentActions.Invoking(() => Parser.Parse(Encoding.UTF8.GetBytes(body))).Should().Throw<OpenAIException>()
            .Which.Message.Should().Contain("unpaired UTF-16 surrogate");
    }

    [Fact]
    public void AToolChoiceWithALoneSurrogateIsA400NamingIt()
    {
        const string body = """{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "au\ud800to"}""";
        FluentActions.Invoking(() => Parser.Parse(Encoding.UTF8.GetBytes(body))).Should().Throw<OpenAIException>().Which.Param.Should().Be("tool_choice");
    }

    /// <summary>
    /// Property: whatever bytes arrive, the parser returns a request or refuses with a 400; never another exception.
    /// Mutations of valid requests (byte flips, cuts, nodes replaced by values of other types) reach deep into the validation.
    /// </summary>
    [Fact]
    public void MutatedRequestsOnlyParseOrGet400()
    {
        var random = new Random(1234);
        int parsed = 0;
        int refused = 0;
        for (int i = 0; i < 20000; i++)
        {
            byte[] body = Mutate(random, Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]));
            try
            {
                Parser.Parse(body);
                parsed++;
            }
            catch (OpenAIException e)
            {
                e.Status.Should().Be(400, Encoding.UTF8.GetString(body));
                refused++;
            }
        }

        // Byte flips inside a property name are refused (invalid UTF-8), so fewer requests parse than survive the flips.
        // Fewer than before forced tool calls and JSON schemas were compiled at parse time: a mutated schema is now often refused.
        parsed.Should().BeGreaterThan(500, "structural mutations keep many requests valid");
        refused.Should().BeGreaterThan(1000, "most mutations break something");
    }

    private static byte[] Mutate(Random random, byte[] seed)
    {
        switch (random.Next(4))
        {
            case 0:
                var flipped = (byte[])seed.Clone();
                for (int n = random.Next(1, 4); n > 0; n--)
                {
                    flipped[random.Next(flipped.Length)] = (byte)random.Next(256);
                }

                return flipped;
            case 1:
                return seed[..random.Next(seed.Length)];
            default:
                var root = JsonNode.Parse(seed)!;
                for (int n = random.Next(1, 3); n > 0; n--)
                {
                    var nodes = Descendants(root).ToList();
                    var target = nodes[random.Next(nodes.Count)];
                    var value = RandomValue(random, 0);
                    if (target.Parent is JsonObject parent)
                    {
                        parent[target.GetPropertyName()] = value;
                    }
                    else if (target.Parent is JsonArray array)
                    {
                        array[target.GetElementIndex()] = value;
                    }
                }

                return Encoding.UTF8.GetBytes(root.ToJsonString());
        }
    }

    private static IEnumerable<JsonNode> Descendants(JsonNode node)
    {
        IEnumerable<JsonNode?> children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a,
            _ => [],
        };
        foreach (var child in children.OfType<JsonNode>())
        {
            yield return child;
            foreach (var d in Descendants(child))
            {
                yield return d;
            }
        }
    }

    private static JsonNode? RandomValue(Random random, int depth) => random.Next(depth > 3 ? 7 : 10) switch
    {
        0 => null,
        1 => JsonValue.Create(random.Next(-3, 5)),
        2 => JsonValue.Create(random.NextDouble() * 4 - 2),
        3 => JsonValue.Create(random.Next(2) == 0),
        4 => JsonValue.Create(new[] { "", "user", "assistant", "tool", "none", "auto", "required", "function", "text", "\ud83d\ude00" }[random.Next(10)]),
        5 => JsonValue.Create(long.MaxValue),
        6 => JsonValue.Create(1e300),
        7 => new JsonArray(Enumerable.Range(0, random.Next(3)).Select(_ => RandomValue(random, depth + 1)).ToArray()),
        8 => new JsonObject { ["role"] = "user", ["content"] = RandomValue(random, depth + 1) },
        _ => JsonNode.Parse(new string('[', 40) + new string(']', 40)),
    };
}
