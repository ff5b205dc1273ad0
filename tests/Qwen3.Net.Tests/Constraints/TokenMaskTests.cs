using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Qwen3.Net.Generation.Constraints;
using Qwen3.Net.Tests.Tokenization;
using static Qwen3.Net.Tests.Constraints.MaskTestVocabulary;

namespace Qwen3.Net.Tests.Constraints;

public class TokenMaskTests
{
    private static TokenVocabulary Vocabulary => MaskTestVocabulary.Vocabulary; // Json.Schema has a Vocabulary type too

    private const string Person = """
        {"type":"object","properties":{
          "name":{"type":"string","maxLength":12},
          "age":{"type":"integer","minimum":0,"maximum":150},
          "email":{"type":"string","format":"email"},
          "tags":{"type":"array","items":{"type":"string","enum":["a","b","日本"]},"maxItems":3},
          "address":{"type":"object","properties":{"city":{"type":"string","maxLength":8},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["city"]}
        },"required":["name","age"],"additionalProperties":false}
        """;

    public static TheoryData<string> WalkSchemas => new()
    {
        Person,
        """{"type":"array","items":{"anyOf":[{"type":"integer","minimum":-5,"maximum":5},{"type":"boolean"},{"type":"null"}]},"minItems":1,"maxItems":6}""",
        """{"type":"object","properties":{"when":{"type":"string","format":"date-time"},"id":{"type":"string","format":"uuid"},"day":{"type":"string","format":"date"}},"required":["when","id","day"]}""",
        """{"$defs":{"t":{"type":"object","properties":{"v":{"type":"number"},"kids":{"type":"array","items":{"$ref":"#/$defs/t"},"maxItems":2}},"required":["v"]}},"$ref":"#/$defs/t"}""",
        """{"type":"object","properties":{"k":{"const":"x"}},"additionalProperties":{"type":"string","maxLength":5},"required":["k"]}""",
        """{"type":"string","pattern":"^[a-z]+(-[a-z]+)*$"}""",
    };

    [Theory]
    [MemberData(nameof(WalkSchemas))]
    public void Random_walks_over_the_mask_produce_documents_that_validate(string schemaText)
    {
        CompiledGrammar grammar = Grammar(schemaText);
        JsonSchema validator = JsonSchema.FromText(schemaText);
        var options = new EvaluationOptions { RequireFormatValidation = true };
        var mask = new ulong[Vocabulary.MaskWords];
        var allowed = new List<int>();
        for (int seed = 0; seed < 6; seed++)
        {
            var random = new Random(seed);
            TokenMatcher matcher = grammar.CreateMatcher();
            var output = new List<byte>();
            for (int step = 0; !matcher.IsTerminated; step++)
            {
                step.Should().BeLessThan(600, "the walk steers toward completion after its budget");
                matcher.FillMask(mask);
                allowed.Clear();
                for (int id = 0; id < Vocabulary.Size; id++)
                {
                    if (Allowed(mask, id))
                    {
                        allowed.Add(id);
                    }
                }

                allowed.Should().NotBeEmpty($"a live matcher always has a next token (output so far: {Encoding.UTF8.GetString(output.ToArray())})");
                int pick = Pick(allowed, random, step > 40);
                if (!Vocabulary.IsEndToken(pick))
                {
                    output.AddRange(Vocabulary.TokenBytes(pick).ToArray());
                }

                matcher.AcceptToken(pick).Should().BeTrue("every token in the mask is accepted");
            }

            string text = Encoding.UTF8.GetString(output.ToArray());
            JsonNode? document = JsonNode.Parse(text);
            EvaluationResults results = validator.Evaluate(document, options);
            results.IsValid.Should().BeTrue($"'{text}' must validate against {schemaText}");
        }
    }

    /// <summary>Random at first; past the budget, prefer ending, then closing quotes and brackets, then short tokens.</summary>
    private static int Pick(List<int> allowed, Random random, bool finish)
    {
        if (!finish)
        {
            return allowed[random.Next(allowed.Count)];
        }

        foreach (int id in allowed)
        {
            if (Vocabulary.IsEndToken(id))
            {
                return id;
            }
        }

        List<int> closing = allowed.FindAll(id => Vocabulary.TokenBytes(id) is [(byte)'"' or (byte)']' or (byte)'}', ..]);
        if (closing.Count > 0)
        {
            return closing[random.Next(closing.Count)];
        }

        List<int> single = allowed.FindAll(id => Vocabulary.TokenBytes(id).Length == 1);
        return single.Count > 0 ? single[random.Next(single.Count)] : allowed[random.Next(allowed.Count)];
    }

    [Theory]
    [InlineData(Person, "")]
    [InlineData(Person, "{\"name\": \"Al")]
    [InlineData(Person, "{\"name\":\"Al\",\"age\":3")]
    [InlineData(Person, "{\"name\":\"Al\",\"age\":3,\"tags\":[\"a\"")]
    [InlineData("""{"type":"array","items":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}""", "[{\"x\":1")]
    [InlineData("""{"type":"object","additionalProperties":true}""", "{\"a\":[1,{\"b\":\"")]
    public void The_mask_is_exactly_the_tokens_whose_bytes_keep_the_document_valid(string schema, string prefix)
    {
        CompiledGrammar grammar = Grammar(schema);
        TokenMatcher matcher = grammar.CreateMatcher();
        byte[] prefixBytes = Encoding.UTF8.GetBytes(prefix);
        matcher.AcceptBytes(prefixBytes).Should().BeTrue();
        var mask = new ulong[Vocabulary.MaskWords];
        matcher.FillMask(mask);
        int allowedCount = 0;
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            ReadOnlySpan<byte> bytes = Vocabulary.TokenBytes(id);
            var reference = new GrammarMatcher(grammar.Automaton);
            reference.AcceptBytes(prefixBytes);
            bool expected = Vocabulary.IsEndToken(id) ? reference.IsAccepting : !bytes.IsEmpty && reference.AcceptBytes(bytes);
            Allowed(mask, id).Should().Be(expected, $"token {id} '{Encoding.UTF8.GetString(bytes)}' after '{prefix}'");
            allowedCount += expected ? 1 : 0;
        }

        allowedCount.Should().BePositive();

        // The second request for the same state comes from the cache and must be identical.
        var again = new ulong[Vocabulary.MaskWords];
        grammar.CreateMatcher().AcceptBytes(prefixBytes).Should().BeTrue();
        TokenMatcher second = grammar.CreateMatcher();
        second.AcceptBytes(prefixBytes);
        second.FillMask(again);
        again.Should().Equal(mask);
    }

    [Fact]
    public void Tokens_spanning_structural_boundaries_are_allowed_exactly_when_valid()
    {
        CompiledGrammar grammar = Grammar(Person);
        var mask = new ulong[Vocabulary.MaskWords];

        TokenMatcher afterKey = grammar.CreateMatcher();
        afterKey.AcceptBytes("{\"name"u8).Should().BeTrue();
        afterKey.FillMask(mask);
        Allowed(mask, Token("\":")).Should().BeTrue();
        Allowed(mask, Token("\":\"")).Should().BeTrue();
        Allowed(mask, Token("\",")).Should().BeFalse("a key must be followed by a colon");

        TokenMatcher inName = grammar.CreateMatcher();
        inName.AcceptBytes("{\"name\":\"Al"u8).Should().BeTrue();
        inName.FillMask(mask);
        Allowed(mask, Token("\",\"")).Should().BeTrue();
        Allowed(mask, Token("\"}")).Should().BeFalse("age is required");
        Allowed(mask, Token("\":")).Should().BeFalse();

        TokenMatcher inAddress = grammar.CreateMatcher();
        inAddress.AcceptBytes("{\"name\":\"Al\",\"age\":3,\"address\":{\"city\":\"X"u8).Should().BeTrue();
        inAddress.FillMask(mask);
        Allowed(mask, Token("\"}}")).Should().BeTrue();
        Allowed(mask, Token("\"},")).Should().BeFalse("no property may follow address");
        Allowed(mask, Token("\"]")).Should().BeFalse();

        TokenMatcher inArray = Grammar("""{"type":"array","items":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}""").CreateMatcher();
        inArray.AcceptBytes("[{\"x\":1"u8).Should().BeTrue();
        inArray.FillMask(mask);
        Allowed(mask, Token("},{\"")).Should().BeTrue();
        Allowed(mask, Token("}]")).Should().BeTrue();
        Allowed(mask, Token("}}")).Should().BeFalse();
    }

    [Fact]
    public void A_multibyte_character_split_across_tokens_continues_only_with_its_continuation_bytes()
    {
        CompiledGrammar grammar = Grammar("""{"type":"string"}""");
        var mask = new ulong[Vocabulary.MaskWords];
        int lead = Token(0xE6); // first byte of 日 (E6 97 A5)
        TokenMatcher matcher = grammar.CreateMatcher();
        matcher.AcceptBytes("\"a"u8).Should().BeTrue();
        matcher.FillMask(mask);
        Allowed(mask, lead).Should().BeTrue();
        matcher.AcceptToken(lead).Should().BeTrue();
        matcher.FillMask(mask);
        int allowed = 0;
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            if (Allowed(mask, id))
            {
                allowed++;
                Vocabulary.TokenBytes(id)[0].Should().BeInRange((byte)0x80, (byte)0xBF, "only a continuation byte may follow a lead byte");
            }
        }

        allowed.Should().BePositive();
        Allowed(mask, Token("\"")).Should().BeFalse();
        matcher.AcceptToken(Token("\"")).Should().BeFalse("the character is unfinished");
        matcher.AcceptToken(Token(0x97)).Should().BeTrue();
        matcher.AcceptToken(Token(0xA5)).Should().BeTrue();
        matcher.AcceptToken(Token("\"")).Should().BeTrue();
        matcher.IsAccepting.Should().BeTrue();

        TokenMatcher number = Grammar("""{"type":"integer"}""").CreateMatcher();
        number.FillMask(mask);
        Allowed(mask, lead).Should().BeFalse();
    }

    [Fact]
    public void Special_tokens_are_never_allowed_and_end_tokens_only_when_complete()
    {
        Qwen3Tokenizer tokenizer = SharedTokenizer.Instance;
        CompiledGrammar grammar = Grammar("""{"type":"string"}""");
        TokenMatcher matcher = grammar.CreateMatcher();
        var mask = new ulong[Vocabulary.MaskWords];
        matcher.AcceptBytes("\"x"u8).Should().BeTrue();
        matcher.FillMask(mask);
        foreach (int id in new[] { tokenizer.ImEndId, tokenizer.EndOfTextId, tokenizer.ImStartId, tokenizer.ThinkStartId, tokenizer.ToolCallStartId })
        {
            Allowed(mask, id).Should().BeFalse();
        }

        matcher.AcceptToken(tokenizer.ImEndId).Should().BeFalse();
        matcher.AcceptToken(tokenizer.ThinkStartId).Should().BeFalse();
        matcher.AcceptBytes("\""u8).Should().BeTrue();
        matcher.FillMask(mask);
        Allowed(mask, tokenizer.ImEndId).Should().BeTrue();
        Allowed(mask, tokenizer.ThinkStartId).Should().BeFalse();
        mask.Sum(word => System.Numerics.BitOperations.PopCount(word)).Should().Be(2, "after a complete string only the two end tokens remain");
        matcher.AcceptToken(tokenizer.ImEndId).Should().BeTrue();
        matcher.IsTerminated.Should().BeTrue();
        matcher.FillMask(mask);
        mask.Should().OnlyContain(word => word == 0);
    }
}
