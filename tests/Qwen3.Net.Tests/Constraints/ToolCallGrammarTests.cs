using System.Text;
using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation.Constraints;
using Qwen3.Net.Tests.Tokenization;

namespace Qwen3.Net.Tests.Constraints;

public class ToolCallGrammarTests
{
    private const byte Open = TokenVocabulary.ToolCallOpenByte;
    private const byte Close = TokenVocabulary.ToolCallCloseByte;

    private static readonly (string Name, JsonElement Parameters)[] Tools =
    [
        ("get_weather", JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""").RootElement.Clone()),
        ("walk", JsonDocument.Parse("""{"$defs":{"n":{"type":"object","properties":{"next":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"null"}]}},"required":["next"]}},"$ref":"#/$defs/n"}""").RootElement.Clone()),
    ];

    private static byte[] Call(string json) => [Open, .. "\n"u8, .. Encoding.UTF8.GetBytes(json), .. "\n"u8, Close];

    private static bool Accepts(Automaton automaton, byte[] bytes)
    {
        var matcher = new GrammarMatcher(automaton);
        return matcher.AcceptBytes(bytes) && matcher.IsAccepting;
    }

    [Fact]
    public void Calls_are_written_as_the_template_renders_them_with_arguments_that_validate()
    {
        var automaton = JsonSchemaCompiler.CompileToolCalls(Tools, parallel: false, Open, Close, GrammarLimits.Default);
        Accepts(automaton, Call("""{"name": "get_weather", "arguments": {"city": "Paris"}}""")).Should().BeTrue();
        Accepts(automaton, Call("""{"name":"walk","arguments":{"next":{"next":null}}}""")).Should().BeTrue("each tool's $refs resolve inside its own parameters");
        Accepts(automaton, Call("""{"name": "get_weather", "arguments": {}}""")).Should().BeFalse("city is required");
        Accepts(automaton, Call("""{"name": "other", "arguments": {"city": "Paris"}}""")).Should().BeFalse("only offered tools may be named");
        Accepts(automaton, Call("""{"arguments": {"city": "Paris"}, "name": "get_weather"}""")).Should().BeFalse("the template writes the name first");
        Accepts(automaton, [.. "<tool_call>\n"u8, .. Encoding.UTF8.GetBytes("""{"name": "get_weather", "arguments": {"city": "P"}}"""), .. "\n</tool_call>"u8])
            .Should().BeFalse("the tags must be the single added tokens, not text spelling them");
    }

    [Fact]
    public void Several_calls_are_allowed_only_where_parallel_calls_are()
    {
        byte[] two = [.. Call("""{"name": "get_weather", "arguments": {"city": "A"}}"""), .. "\n"u8, .. Call("""{"name": "walk", "arguments": {"next": null}}""")];
        Accepts(JsonSchemaCompiler.CompileToolCalls(Tools, parallel: true, Open, Close, GrammarLimits.Default), two).Should().BeTrue();
        Accepts(JsonSchemaCompiler.CompileToolCalls(Tools, parallel: false, Open, Close, GrammarLimits.Default), two).Should().BeFalse();
    }

    [Fact]
    public void The_tool_call_vocabulary_spells_the_tags_as_marker_bytes_and_only_there()
    {
        var tokenizer = SharedTokenizer.Instance;
        var vocabulary = TokenVocabulary.ForToolCalls(tokenizer);
        vocabulary.TokenBytes(tokenizer.ToolCallStartId).ToArray().Should().Equal(Open);
        vocabulary.TokenBytes(tokenizer.ToolCallEndId).ToArray().Should().Equal(Close);
        vocabulary.TokenBytes(tokenizer.ThinkEndId).IsEmpty.Should().BeTrue("other added tokens stay out");
        int holders = 0;
        for (int id = 0; id < vocabulary.Size; id++)
        {
            if (id != tokenizer.ToolCallStartId && id != tokenizer.ToolCallEndId)
            {
                var bytes = vocabulary.TokenBytes(id);
                bytes.Contains(Open).Should().BeFalse();
                bytes.Contains(Close).Should().BeFalse();
                holders += tokenizer.TokenBytes(id).IndexOfAny(Open, Close) >= 0 ? 1 : 0;
            }
        }

        holders.Should().BeGreaterThan(0, "byte-level tokens holding the marker bytes exist and are left out");
    }

    [Fact]
    public void A_tool_whose_parameters_cannot_be_compiled_is_named()
    {
        var tools = new[] { ToolDefinition.Function("bad", "B", JsonDocument.Parse("""{"type":"object","not":{}}""").RootElement) };
        FluentActions.Invoking(() => Generation.ResponseFormat.ForToolCalls(tools))
            .Should().Throw<SchemaException>().Which.Message.Should().Contain("tool 'bad'").And.Contain("#/not");
    }
}
