using System.Text;
using System.Text.Json;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

public class ChatOutputParserTests
{
    private const int Think = 151667;
    private const int EndThink = 151668;
    private const int TextToken = 42;

    /// <summary>A generated stream: marker token ids and text, in order.</summary>
    private sealed record Piece(int? Marker, string Text)
    {
        public static Piece Open => new(Think, "");

        public static Piece Close => new(EndThink, "");

        public static implicit operator Piece(string text) => new(null, text);
    }

    /// <summary>Everything observable about a parse, with adjacent text segments of one kind merged.</summary>
    private sealed record Outcome(string Segments, string Reasoning, string Answer, string Content, bool HasReasoning, bool Stopped);

    private static Outcome Parse(IEnumerable<(int Id, string Text)> tokens, bool startsInReasoning = false, params string[] stops)
    {
        // As the generator feeds a chat turn: stop strings are found in front of the parser, never across a marker, and
        // the text the matcher still holds comes out with the last token.
        var parser = new ChatOutputParser(Think, EndThink, startsInReasoning);
        var matcher = new StopStringMatcher(stops);
        var segments = new List<OutputSegment>();
        bool stopped = false;
        var list = tokens.ToList();
        for (int i = 0; i < list.Count && !stopped; i++)
        {
            var (id, text) = list[i];
            stopped = matcher.PushToken(id is Think or EndThink, text, out string released);
            parser.Push(stopped ? TextToken : id, stopped || i < list.Count - 1 ? released : released + matcher.Flush(), segments);
        }

        parser.Finish(segments);

        var described = new StringBuilder();
        OutputSegmentKind? last = null;
        foreach (var s in segments)
        {
            bool mergeable = s.Kind is OutputSegmentKind.Reasoning or OutputSegmentKind.Answer;
            if (!(mergeable && last == s.Kind))
            {
                described.Append($"\n[{s.Kind}]");
            }

            described.Append(s.Kind switch
            {
                OutputSegmentKind.ToolCall => $"{s.ToolCall!.Name} {s.ToolCall.Arguments.GetRawText()}",
                OutputSegmentKind.MalformedToolCall => $"{s.Malformed!.Text} | {s.Malformed.Error.Split(':')[0]}",
                _ => s.Text,
            });
            last = mergeable ? s.Kind : null;
        }

        s_lastToolCalls = parser.ToolCalls;
        return new Outcome(described.ToString(), parser.Reasoning, parser.Answer, parser.HistoryContent, parser.HasReasoning, stopped);
    }

    [ThreadStatic]
    private static IReadOnlyList<ToolCall>? s_lastToolCalls;

    /// <summary>The stream with each text piece whole, then split at every position of the concatenated text.</summary>
    private static IEnumerable<List<(int, string)>> AllSplits(Piece[] pieces)
    {
        List<(int, string)> Whole() => pieces.Select(p => (p.Marker ?? TextToken, p.Text)).ToList();
        yield return Whole();

        // One character per token.
        yield return pieces.SelectMany(p => p.Marker is { } m ? [(m, "")] : p.Text.Select(c => (TextToken, c.ToString()))).ToList();

        for (int pieceIndex = 0; pieceIndex < pieces.Length; pieceIndex++)
        {
            var text = pieces[pieceIndex].Text;
            if (pieces[pieceIndex].Marker is not null)
            {
                continue;
            }

            for (int cut = 1; cut < text.Length; cut++)
            {
                for (int second = cut + 1; second <= text.Length; second++)
                {
                    var list = Whole();
                    var parts = new List<(int, string)> { (TextToken, text[..cut]), (TextToken, text[cut..second]) };
                    if (second < text.Length)
                    {
                        parts.Add((TextToken, text[second..]));
                    }

                    list.RemoveAt(pieceIndex);
                    list.InsertRange(pieceIndex, parts);
                    yield return list;
                }
            }
        }
    }

    private static Outcome ParseEverySplit(Piece[] pieces, bool startsInReasoning = false, params string[] stops)
    {
        var expected = Parse(AllSplits(pieces).First(), startsInReasoning, stops);
        int count = 0;
        foreach (var split in AllSplits(pieces))
        {
            Parse(split, startsInReasoning, stops).Should().Be(expected, $"split {string.Join("|", split.Select(s => s.Item2))}");
            count++;
        }

        count.Should().BeGreaterThan(pieces.Length);
        return expected;
    }

    [Fact]
    public void Reasoning_and_answer_are_separated_by_think_tokens_at_every_split()
    {
        var outcome = ParseEverySplit([Piece.Open, "\nFirst, 17*23.\n\nThat is 391.\n", Piece.Close, "\n\n17 × 23 = 391."]);
        outcome.Reasoning.Should().Be("First, 17*23.\n\nThat is 391.");
        outcome.Answer.Should().Be("17 × 23 = 391.");
        outcome.HasReasoning.Should().BeTrue();
        outcome.Segments.Should().Be("\n[Reasoning]First, 17*23.\n\nThat is 391.\n[Answer]17 × 23 = 391.");
    }

    [Fact]
    public void The_empty_think_block_after_no_think_yields_no_reasoning_text()
    {
        var outcome = ParseEverySplit([Piece.Open, "\n\n", Piece.Close, "\n\nHello there!"]);
        outcome.Reasoning.Should().BeEmpty();
        outcome.HasReasoning.Should().BeTrue();
        outcome.Answer.Should().Be("Hello there!");
        outcome.Segments.Should().Be("\n[Answer]Hello there!");
    }

    [Fact]
    public void A_prompt_that_opened_the_think_block_starts_in_reasoning()
    {
        var outcome = ParseEverySplit(["\nhmm\n", Piece.Close, "\n\nok"], startsInReasoning: true);
        outcome.Reasoning.Should().Be("hmm");
        outcome.Answer.Should().Be("ok");
    }

    [Fact]
    public void Without_a_think_token_everything_is_answer_and_there_is_no_reasoning()
    {
        var outcome = ParseEverySplit(["Just <think> text, not the token.\n"]);
        outcome.HasReasoning.Should().BeFalse();
        outcome.Answer.Should().Be("Just <think> text, not the token.");
    }

    [Fact]
    public void Tool_calls_are_parsed_at_every_split()
    {
        var outcome = ParseEverySplit(
        [
            Piece.Open, "\nNeed weather.\n", Piece.Close,
            "\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"t\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call>",
        ]);
        outcome.Reasoning.Should().Be("Need weather.");
        outcome.Answer.Should().Be("Let me check.");
        outcome.Content.Should().Be("Let me check.");
        outcome.Segments.Should().Be(
            "\n[Reasoning]Need weather.\n[Answer]Let me check.\n[ToolCall]get_weather {\"city\": \"Paris\"}\n[ToolCall]t \"{\\\"a\\\": 1}\"");
        s_lastToolCalls.Should().HaveCount(2);
        s_lastToolCalls![0].Should().Be(ToolCall.FromJson("get_weather", "{\"city\": \"Paris\"}"));
        s_lastToolCalls[1].Arguments.ValueKind.Should().Be(JsonValueKind.String);
    }

    [Fact]
    public void Malformed_tool_calls_are_reported_with_their_text_and_kept_in_history_content()
    {
        var outcome = ParseEverySplit(["<tool_call>\n{\"name\": \"x\", \"arguments\": {oops}\n</tool_call>\nafter"]);
        outcome.Segments.Should().Be("\n[MalformedToolCall]\n{\"name\": \"x\", \"arguments\": {oops}\n | The tool call is not valid JSON\n[Answer]after");
        outcome.Answer.Should().Be("after");
        outcome.Content.Should().Be("<tool_call>\n{\"name\": \"x\", \"arguments\": {oops}\n</tool_call>after");
    }

    [Theory]
    [InlineData("[1, 2]", "The tool call must be a JSON object, not Array.")]
    [InlineData("{\"arguments\": {}}", "The tool call has no \"name\" string.")]
    [InlineData("{\"name\": \"f\"}", "The tool call has no \"arguments\".")]
    [InlineData("{\"name\": \"f\", \"arguments\": 3}", "The tool call's \"arguments\" must be an object or a JSON string, not Number.")]
    public void Tool_calls_without_the_expected_shape_are_malformed(string json, string error)
    {
        ChatOutputParser.TryParseToolCall(json, out var call).Should().Be(error);
        call.Should().BeNull();
    }

    [Theory]
    [InlineData("{\"name\": \"f\", \"name\": \"g\", \"arguments\": {}}", "The tool call has more than one \"name\".")]
    [InlineData("{\"name\": \"f\", \"arguments\": {}, \"arguments\": {\"a\": 1}}", "The tool call has more than one \"arguments\".")]
    public void Tool_calls_with_a_repeated_key_are_malformed(string json, string error)
    {
        ChatOutputParser.TryParseToolCall(json, out var call).Should().Be(error);
        call.Should().BeNull();
    }

    [Theory]
    [InlineData("a <tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"</tool\"}}\n</tool_call> b <tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>")]
    [InlineData("<tool_call>{bad}</tool_call><tool_call>{\"name\": \"f\", \"argu")]
    public void Streamed_tool_call_text_joins_to_each_block_at_every_split(string text)
    {
        foreach (var split in AllSplits([text]))
        {
            var parser = new ChatOutputParser(Think, EndThink, false, streamToolCallText: true);
            var segments = new List<OutputSegment>();
            foreach (var (id, piece) in split)
            {
                parser.Push(id, piece, segments);
            }

            parser.Finish(segments);
            var pieces = new StringBuilder();
            int blocks = 0;
            foreach (var segment in segments)
            {
                if (segment.Kind == OutputSegmentKind.ToolCallText)
                {
                    pieces.Append(segment.Text);
                    segment.Text.Should().NotContain("</tool_call>");
                }
                else if (segment.Kind is OutputSegmentKind.ToolCall or OutputSegmentKind.MalformedToolCall)
                {
                    pieces.ToString().Should().Be(segment.Text);
                    pieces.Clear();
                    blocks++;
                }
            }

            blocks.Should().Be(2);
            pieces.Length.Should().Be(0);
        }
    }

    [Fact]
    public void Tool_call_text_is_not_streamed_unless_asked()
    {
        var parser = new ChatOutputParser(Think, EndThink, false);
        var segments = new List<OutputSegment>();
        parser.Push(TextToken, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>", segments);
        parser.Finish(segments);
        segments.Select(s => s.Kind).Should().Equal(OutputSegmentKind.ToolCall);
    }

    [Fact]
    public void An_unclosed_tool_call_is_reported_when_the_output_ends()
    {
        var outcome = ParseEverySplit(["ok <tool_call>{\"name\": \"f\", \"argu"]);
        outcome.Segments.Should().Be("\n[Answer]ok \n[MalformedToolCall]{\"name\": \"f\", \"argu | The tool call was not closed with </tool_call>.");
    }

    [Fact]
    public void A_partial_tool_call_tag_at_the_end_is_answer_text()
    {
        ParseEverySplit(["see <tool_ca"]).Answer.Should().Be("see <tool_ca");
    }

    [Fact]
    public void Stop_strings_end_the_output_and_are_not_shown_at_every_split()
    {
        var outcome = ParseEverySplit(["Counting: one, two, STOP three"], false, "STOP", "two, thr");
        outcome.Stopped.Should().BeTrue();
        outcome.Answer.Should().Be("Counting: one, two, ");
    }

    [Fact]
    public void A_token_without_text_does_not_release_a_stop_string_prefix()
    {
        // Found by the tool-call-parser fuzz target (fuzz/corpus/tool-call-parser/bug-empty-token-in-stop-string): the
        // detokenizer gives "" for a token that only starts a character, which released the held "</" and missed "</s>".
        var outcome = Parse([(TextToken, "a </"), (TextToken, ""), (TextToken, "s> b")], false, "</s>");
        outcome.Stopped.Should().BeTrue();
        outcome.Answer.Should().Be("a ");

        outcome = Parse([(TextToken, "\u4F60"), (TextToken, ""), (TextToken, "\u597D!")], false, "\u4F60\u597D");
        outcome.Stopped.Should().BeTrue();
        outcome.Answer.Should().BeEmpty();
    }

    [Fact]
    public void A_prefix_of_a_stop_string_that_does_not_complete_is_released()
    {
        var outcome = ParseEverySplit(["a STO b ST"], false, "STOP");
        outcome.Stopped.Should().BeFalse();
        outcome.Answer.Should().Be("a STO b ST");
    }

    [Fact]
    public void Stop_strings_apply_to_reasoning_too()
    {
        var outcome = ParseEverySplit([Piece.Open, "\nthink END more", Piece.Close, "answer"], false, "END");
        outcome.Stopped.Should().BeTrue();
        outcome.Reasoning.Should().Be("think ");
        outcome.Answer.Should().BeEmpty();
    }

    [Fact]
    public void Pushing_after_the_end_throws()
    {
        var parser = new ChatOutputParser(Think, EndThink, false);
        var output = new List<OutputSegment>();
        parser.Push(1, "ax", output);
        parser.Finish(output);
        FluentActions.Invoking(() => parser.Push(1, "b", output)).Should().Throw<InvalidOperationException>();
    }
}
