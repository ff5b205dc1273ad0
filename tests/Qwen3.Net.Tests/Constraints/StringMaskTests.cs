using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;
using static Qwen3.Net.Tests.Constraints.MaskTestVocabulary;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>Masks inside strings, where plain tokens are decided by their character count instead of a trie walk.</summary>
public class StringMaskTests
{
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
        int masksCompared = CompareWithReference(() => schema.Length == 0 ? CompiledGrammar.AnyJsonObject(Vocabulary) : Grammar(schema), masks: 40, walks: 20, steps: 60, freshGrammars: false);
        masksCompared.Should().BeGreaterThan(30);
    }
}
