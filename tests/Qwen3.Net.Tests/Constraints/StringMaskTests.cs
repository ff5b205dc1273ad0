using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;
using Qwen3.Net.Tests.Tokenization;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>Masks inside strings, where plain tokens are decided by their character count instead of a trie walk.</summary>
public class StringMaskTests
{
    private static readonly Lazy<TokenVocabulary> Shared = new(() => TokenVocabulary.FromTokenizer(SharedTokenizer.Instance));

    private static readonly Lazy<Dictionary<string, int>> Ids = new(() =>
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            ReadOnlySpan<byte> bytes = Vocabulary.TokenBytes(id);
            if (!bytes.IsEmpty)
            {
                map.TryAdd(Encoding.Latin1.GetString(bytes), id);
            }
        }

        return map;
    });

    private static TokenVocabulary Vocabulary => Shared.Value;

    private static int Token(params byte[] bytes) => Ids.Value[Encoding.Latin1.GetString(bytes)];

    private static int Token(string text) => Token(Encoding.UTF8.GetBytes(text));

    private static bool Allowed(ulong[] mask, int id) => (mask[id >> 6] & (1UL << id)) != 0;

    private static CompiledGrammar Grammar(string schema) => CompiledGrammar.FromJsonSchema(JsonDocument.Parse(schema).RootElement, Vocabulary);

    public static TheoryData<string> DifferentialSchemas => new()
    {
        """{"type":"string","minLength":2,"maxLength":6}""",
        """{"type":"object","properties":{"a":{"type":"string","maxLength":12},"b":{"type":"string","minLength":3}},"additionalProperties":{"type":"string","maxLength":4},"required":["a"]}""",
        """{"anyOf":[{"type":"string","maxLength":3},{"type":"string","pattern":"^[a-c]+$"},{"enum":["日本語","x\"y"]}]}""",
        """{"type":"array","items":{"type":"string","pattern":"^a.{0,4}b$"},"maxItems":3}""",
        """{"type":"object","properties":{"t":{"type":"string","maxLength":20},"n":{"type":"array","items":{"type":"string","minLength":1,"maxLength":2}}},"required":["t","n"]}""",
        "",
    };

    [Fact]
    public void Plain_tokens_are_counted_in_characters_and_the_others_are_not_plain()
    {
        Vocabulary.PlainChars[Token("abc")].Should().Be(3);
        Vocabulary.PlainChars[Token("日本")].Should().Be(2, "a 3-byte character is one character");
        Vocabulary.PlainChars[Token(0xE6)].Should().Be(1, "a lone lead byte starts one character");
        Vocabulary.PlainChars[Token(0x97)].Should().Be(-1, "a continuation byte cannot start a character");
        Vocabulary.PlainChars[Token("\n")].Should().Be(-1, "a control byte must be escaped in a string");
        Vocabulary.PlainChars[Token("\",")].Should().Be(-1, "a quote ends the string");
        Vocabulary.PlainChars[Token("\\n")].Should().Be(-1, "an escape is decided by the automaton");
        Vocabulary.ContextTrie.NodeCount.Should().BeLessThan(Vocabulary.Trie.NodeCount / 10, "only a few tokens need a walk inside a string");
    }

    [Fact]
    public void The_reach_is_the_number_of_characters_a_string_still_takes()
    {
        CompiledGrammar bounded = Grammar("""{"type":"string","maxLength":5}""");
        int cap = Vocabulary.MaxPlainChars;
        bounded.Dfa.StringReach(After(bounded, "\""), cap).Should().Be(5);
        bounded.Dfa.StringReach(After(bounded, "\"a日"), cap).Should().Be(3);
        bounded.Dfa.StringReach(After(bounded, "\"a\\n日\\u00e9"), cap).Should().Be(1, "an escape is one character");
        bounded.Dfa.StringReach(After(bounded, "\"abcde"), cap).Should().Be(0);
        bounded.Dfa.StringReach(After(bounded, "\"a\\"), cap).Should().Be(LazyDfa.NotInString, "inside an escape plain characters do not apply");

        CompiledGrammar free = Grammar("""{"type":"string","minLength":2}""");
        free.Dfa.StringReach(After(free, "\"x"), cap).Should().Be(cap);

        CompiledGrammar keys = Grammar("""{"type":"object","properties":{"ab":{"type":"integer"}},"additionalProperties":true}""");
        keys.Dfa.StringReach(After(keys, "{\""), cap).Should().Be(LazyDfa.NotInString, "a key may be a declared name, whose letters lead elsewhere");
        keys.Dfa.StringReach(After(keys, "{\"ab\":"), cap).Should().Be(LazyDfa.NotInString);
    }

    private static DfaState After(CompiledGrammar grammar, string prefix)
    {
        DfaState state = grammar.Dfa.Start;
        foreach (byte b in Encoding.UTF8.GetBytes(prefix))
        {
            state = grammar.Dfa.Step(state, b);
        }

        state.IsDead.Should().BeFalse($"'{prefix}' is a valid prefix");
        return state;
    }

    [Fact]
    public void A_token_that_would_pass_max_length_is_masked_counting_multibyte_characters_and_escapes_as_one()
    {
        CompiledGrammar grammar = Grammar("""{"type":"string","maxLength":3}""");
        var mask = new ulong[Vocabulary.MaskWords];
        TokenMatcher matcher = grammar.CreateMatcher();
        matcher.AcceptBytes("\"é\\n"u8).Should().BeTrue(); // 2 of 3 characters: é (2 bytes) and the escape \n
        matcher.FillMask(mask);
        Allowed(mask, Token("a")).Should().BeTrue();
        Allowed(mask, Token("日")).Should().BeTrue("one 3-byte character fits");
        Allowed(mask, Token(0xE6)).Should().BeTrue("a lead byte starts the last character");
        Allowed(mask, Token("\\n")).Should().BeTrue("an escape is one character");
        Allowed(mask, Token("\"")).Should().BeTrue();
        Allowed(mask, Token("ab")).Should().BeFalse("two characters do not fit");
        Allowed(mask, Token("日本")).Should().BeFalse("two characters do not fit");

        matcher.AcceptToken(Token("日")).Should().BeTrue();
        matcher.FillMask(mask);
        Allowed(mask, Token("\"")).Should().BeTrue();
        Allowed(mask, Token("a")).Should().BeFalse();
        Allowed(mask, Token(0xE6)).Should().BeFalse();
        Allowed(mask, Token("\\n")).Should().BeFalse();

        TokenMatcher atLeast = Grammar("""{"type":"string","minLength":2}""").CreateMatcher();
        atLeast.AcceptBytes("\"日"u8).Should().BeTrue();
        atLeast.FillMask(mask);
        Allowed(mask, Token("\"")).Should().BeFalse("one character is too short");
        Allowed(mask, Token("日本")).Should().BeTrue();
        atLeast.AcceptToken(Token("日本")).Should().BeTrue();
        atLeast.FillMask(mask);
        Allowed(mask, Token("\"")).Should().BeTrue();
    }

    /// <summary>
    /// Random walks where every mask is compared with one computed the slow way: each token's bytes stepped one by one
    /// through the automaton of a separately compiled grammar (no trie, no plain-token tables, no mask cache).
    /// </summary>
    [Theory]
    [MemberData(nameof(DifferentialSchemas))]
    public void Masks_equal_the_masks_of_stepping_every_token_through_the_automaton(string schema)
    {
        CompiledGrammar grammar = schema.Length == 0 ? CompiledGrammar.AnyJsonObject(Vocabulary) : Grammar(schema);
        var mask = new ulong[Vocabulary.MaskWords];
        int masksCompared = 0;
        for (int seed = 0; masksCompared < 40 && seed < 20; seed++)
        {
            CompiledGrammar reference = schema.Length == 0 ? CompiledGrammar.AnyJsonObject(Vocabulary) : Grammar(schema);
            DfaState referenceState = reference.Dfa.Start;
            var random = new Random(seed);
            TokenMatcher matcher = grammar.CreateMatcher();
            var output = new List<byte>();
            for (int step = 0; step < 60 && !matcher.IsTerminated; step++)
            {
                matcher.FillMask(mask);
                var expected = ReferenceMask(reference, referenceState);
                for (int word = 0; word < mask.Length; word++)
                {
                    if (mask[word] != expected[word])
                    {
                        int id = (word * 64) + System.Numerics.BitOperations.TrailingZeroCount(mask[word] ^ expected[word]);
                        Allowed(mask, id).Should().Be(Allowed(expected, id), $"token {id} '{Encoding.UTF8.GetString(Vocabulary.TokenBytes(id))}' after '{Encoding.UTF8.GetString(output.ToArray())}'");
                    }
                }

                masksCompared++;
                int pick = Pick(mask, random, step > 30);
                matcher.AcceptToken(pick).Should().BeTrue();
                if (Vocabulary.IsEndToken(pick))
                {
                    break;
                }

                foreach (byte b in Vocabulary.TokenBytes(pick))
                {
                    referenceState = reference.Dfa.Step(referenceState, b);
                }

                output.AddRange(Vocabulary.TokenBytes(pick).ToArray());
            }
        }

        masksCompared.Should().BeGreaterThan(30);
    }

    private static ulong[] ReferenceMask(CompiledGrammar reference, DfaState state)
    {
        var mask = new ulong[Vocabulary.MaskWords];
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            ReadOnlySpan<byte> bytes = Vocabulary.TokenBytes(id);
            bool allowed;
            if (Vocabulary.IsEndToken(id))
            {
                allowed = state.Accepting;
            }
            else
            {
                DfaState s = state;
                foreach (byte b in bytes)
                {
                    s = reference.Dfa.Step(s, b);
                    if (s.IsDead)
                    {
                        break;
                    }
                }

                allowed = !bytes.IsEmpty && !s.IsDead;
            }

            if (allowed)
            {
                mask[id >> 6] |= 1UL << id;
            }
        }

        return mask;
    }

    /// <summary>Often a token that is not plain (quotes, escapes, split characters), so the walked part of a string mask is exercised; past the budget, toward the end.</summary>
    private static int Pick(ulong[] mask, Random random, bool finish)
    {
        var allowed = new List<int>();
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            if (Allowed(mask, id))
            {
                allowed.Add(id);
            }
        }

        allowed.Should().NotBeEmpty();
        List<int> preferred = finish
            ? allowed.FindAll(id => Vocabulary.IsEndToken(id) || Vocabulary.TokenBytes(id) is [(byte)'"' or (byte)']' or (byte)'}', ..])
            : random.Next(3) == 0 ? allowed.FindAll(id => Vocabulary.PlainChars[id] < 0) : allowed;
        if (finish && preferred.Exists(Vocabulary.IsEndToken))
        {
            return preferred.Find(Vocabulary.IsEndToken);
        }

        List<int> from = preferred.Count > 0 ? preferred : allowed;
        return from[random.Next(from.Count)];
    }
}
