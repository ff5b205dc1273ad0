using System.Buffers;
using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation.Constraints;
using static Qwen3.Net.Tests.Constraints.MaskTestVocabulary;

namespace Qwen3.Net.Tests.Constraints;

/// <summary>
/// Masks inside strings with <c>minLength</c>/<c>maxLength</c>, whose characters are counted in the matcher's
/// configurations and whose masks are derived from one reference position per string.
/// </summary>
public class CountedStringMaskTests
{
    /// <summary>JSON-encoded characters the prefixes cycle through: ASCII, 2-, 3- and 4-byte UTF-8, and escapes.</summary>
    private static readonly string[] Characters = ["a", "é", "\\n", "日", "\\u00e9", "😀", "\\\"", "b"];

    /// <summary>What a prefix ends with after its whole characters: nothing, or the start of one more character.</summary>
    public enum Pending
    {
        None,
        LeadByte,
        Backslash,
        HexDigits,
    }

    /// <summary>
    /// Positions near 0, near minLength and near maxLength, for bounds where the mask comes from a walk (the reference at
    /// minLength), from the reference minus long tokens (near maxLength), or minus closing tokens (below minLength).
    /// </summary>
    public static TheoryData<int, int, int, Pending> Positions
    {
        get
        {
            var data = new TheoryData<int, int, int, Pending>();
            foreach ((int min, int max, int[] positions) in new (int, int, int[])[]
            {
                (0, 3, [0, 1, 2, 3]),
                (5, 40, [0, 1, 4, 5, 6, 30, 38, 39, 40]),
                (0, 1000, [0, 1, 500, 990, 999, 1000]),
                (300, -1, [0, 1, 298, 299, 300, 301]),
                (300, 800, [0, 299, 300, 301, 797, 800]),
            })
            {
                foreach (int chars in positions)
                {
                    foreach (Pending pending in Enum.GetValues<Pending>())
                    {
                        if (pending == Pending.None || max < 0 || chars < max)
                        {
                            data.Add(min, max, chars, pending);
                        }
                    }
                }
            }

            return data;
        }
    }

    [Fact]
    public void The_reference_decoder_knows_truncated_utf8_from_invalid_utf8()
    {
        // The independent check below relies on this: a valid start of a character needs more data, an invalid one does not.
        Rune.DecodeFromUtf8([0xE6], out _, out _).Should().Be(OperationStatus.NeedMoreData);
        Rune.DecodeFromUtf8([0xF0, 0x9F], out _, out _).Should().Be(OperationStatus.NeedMoreData);
        Rune.DecodeFromUtf8([0xED, 0xA0], out _, out _).Should().Be(OperationStatus.InvalidData, "a surrogate");
        Rune.DecodeFromUtf8([0xE0, 0x80], out _, out _).Should().Be(OperationStatus.InvalidData, "an overlong form");
        Rune.DecodeFromUtf8([0xF4, 0x90], out _, out _).Should().Be(OperationStatus.InvalidData, "past U+10FFFF");
        Rune.DecodeFromUtf8([0xC1], out _, out _).Should().Be(OperationStatus.InvalidData);
    }

    /// <summary>
    /// In an array of bounded strings, every token of the real vocabulary is allowed exactly when decoding its bytes as
    /// the continuation of the string says so: counting code points (an escape or a UTF-8 sequence is one character, a
    /// started one too), and for a token that closes the string (<c>"</c>, <c>",</c>, <c>","</c>, <c>"]</c>...) only the
    /// characters before the quote, with what follows the quote checked as the start of the next string.
    /// </summary>
    [Theory]
    [MemberData(nameof(Positions))]
    public void The_mask_at_a_position_is_exactly_the_tokens_whose_decoded_characters_fit_the_bounds(int min, int max, int chars, Pending pending)
    {
        string bounds = max >= 0 ? $"\"minLength\":{min},\"maxLength\":{max}" : $"\"minLength\":{min}";
        string schema = "{\"type\":\"array\",\"items\":{\"type\":\"string\"," + bounds + "}}";
        byte[] content = Content(chars, pending);
        byte[] prefix = [.. "[\""u8, .. content];
        CompiledGrammar grammar = Grammar(schema);
        var mask = new ulong[Vocabulary.MaskWords];
        TokenMatcher matcher = grammar.CreateMatcher();
        matcher.AcceptBytes(prefix).Should().BeTrue();
        matcher.FillMask(mask);

        int allowed = 0;
        int closing = 0;
        var wrong = new List<string>();
        for (int id = 0; id < Vocabulary.Size; id++)
        {
            byte[] token = Vocabulary.TokenBytes(id).ToArray();
            bool expected = token.Length > 0 && InString([.. PendingBytes(pending), .. token], chars, min, max);
            if (Allowed(mask, id) != expected)
            {
                wrong.Add($"token {id} '{Encoding.UTF8.GetString(token)}' should be {(expected ? "allowed" : "refused")}");
            }

            allowed += expected ? 1 : 0;
            closing += expected && Array.IndexOf(token, (byte)'"') >= 0 ? 1 : 0;
        }

        wrong.Should().BeEmpty($"after {chars} characters and {pending} (minLength {min}, maxLength {max})");
        allowed.Should().BePositive();
        if (pending == Pending.None && chars >= min)
        {
            closing.Should().BeGreaterThan(3, "tokens spanning the closing quote were checked");
        }

        // The same position again, from the caches (a derived, shared or walked mask), is identical.
        TokenMatcher second = grammar.CreateMatcher();
        second.AcceptBytes(prefix).Should().BeTrue();
        var again = new ulong[Vocabulary.MaskWords];
        second.FillMask(again);
        again.Should().Equal(mask);
    }

    [Fact]
    public void Positions_of_a_long_string_share_the_masks_of_its_reference_position()
    {
        CompiledGrammar grammar = Grammar("""{"type":"object","properties":{"body":{"type":"string","minLength":10,"maxLength":1000}},"required":["body"]}""");
        string open = "{\"body\":\"";
        DfaState reference = After(grammar, open + new string('x', 10));
        DfaState middle = After(grammar, open + new string('y', 500));
        DfaState nearEnd = After(grammar, open + new string('z', 995));
        DfaState below = After(grammar, open + "abc");
        middle.Should().NotBeSameAs(reference, "each position is a state of its own");

        grammar.Dfa.CountedPositionOf(reference).Should().BeNull("the reference is counted at minLength");
        CountedPosition position = grammar.Dfa.CountedPositionOf(middle)!;
        position.Reference.Should().BeSameAs(reference);
        (position.Room, position.Need).Should().Be((500, -490));
        grammar.Dfa.CountedPositionOf(nearEnd)!.Reference.Should().BeSameAs(reference);
        grammar.Dfa.CountedPositionOf(below)!.Need.Should().Be(7);

        var mask = new ulong[Vocabulary.MaskWords];
        TokenMatcher matcher = grammar.CreateMatcher();
        matcher.AcceptBytes(Encoding.UTF8.GetBytes(open + new string('y', 500))).Should().BeTrue();
        matcher.FillMask(mask);
        reference.Mask.Should().NotBeNull("the reference's mask was walked once");
        middle.Mask.Should().BeSameAs(reference.Mask, "far from both bounds the mask is the reference's, not a copy");
        Allowed(mask, Token("\"}")).Should().BeTrue();
    }

    [Fact]
    public void A_huge_max_length_compiles_to_a_few_states_and_counts_past_a_thousand_characters()
    {
        Automaton automaton = SchemaKeywordTests.Compile("""{"type":"array","items":{"type":"string","minLength":1500,"maxLength":2000000000},"maxItems":1000}""");
        automaton.StateCount.Should().BeLessThan(50_000, "each string is one looping character fragment, not one per position");
        SchemaKeywordTests.Compile("""{"type":"string","maxLength":2147483647}""").StateCount.Should().BeLessThan(100);

        CompiledGrammar grammar = Grammar("""{"type":"string","minLength":1500,"maxLength":1600}""");
        TokenMatcher matcher = grammar.CreateMatcher();
        matcher.AcceptBytes(Encoding.UTF8.GetBytes("\"" + new string('a', 1499))).Should().BeTrue();
        matcher.AcceptBytes("\""u8).Should().BeFalse("1,499 characters are too few");
        matcher.AcceptBytes(Encoding.UTF8.GetBytes(new string('b', 101))).Should().BeTrue();
        matcher.AcceptBytes("c"u8).Should().BeFalse("1,601 characters are too many");
        matcher.AcceptBytes("\""u8).Should().BeTrue();
        matcher.IsComplete.Should().BeTrue();
    }

    /// <summary>Differential walks (every mask against stepping each token through the automaton) on counted strings in arrays, objects, anyOf and recursion.</summary>
    [Theory]
    [InlineData("""{"type":"array","items":{"type":"string","minLength":2,"maxLength":5},"maxItems":4}""")]
    [InlineData("""{"anyOf":[{"type":"string","maxLength":2},{"type":"string","minLength":4,"maxLength":30},{"type":"null"}]}""")]
    [InlineData("""{"$defs":{"n":{"type":"object","properties":{"s":{"type":"string","minLength":1,"maxLength":9},"k":{"type":"array","items":{"$ref":"#/$defs/n"},"maxItems":2}},"required":["s","k"]}},"$ref":"#/$defs/n"}""")]
    [InlineData("""{"type":"object","properties":{"t":{"type":"string","minLength":3,"maxLength":200}},"additionalProperties":{"type":"string","minLength":20}}""")]
    public void Masks_of_counted_strings_equal_the_masks_of_stepping_every_token(string schema)
    {
        CompareWithReference(() => Grammar(schema), masks: 40, walks: 12, steps: 60, freshGrammars: true).Should().BeGreaterThan(30);
    }

    /// <summary>The string content of <paramref name="chars"/> whole characters, then the start of one more as <paramref name="pending"/> says.</summary>
    private static byte[] Content(int chars, Pending pending)
    {
        var text = new StringBuilder();
        for (int i = 0; i < chars; i++)
        {
            text.Append(Characters[i % Characters.Length]);
        }

        return [.. Encoding.UTF8.GetBytes(text.ToString()), .. PendingBytes(pending)];
    }

    private static byte[] PendingBytes(Pending pending) => pending switch
    {
        Pending.LeadByte => [0xE6],
        Pending.Backslash => "\\"u8.ToArray(),
        Pending.HexDigits => "\\u0"u8.ToArray(),
        _ => [],
    };

    /// <summary>
    /// Whether <paramref name="bytes"/>, read inside a string of <paramref name="chars"/> characters so far, keep an array of
    /// such strings valid: decoded with <see cref="Rune.DecodeFromUtf8"/> and JSON's escapes (no <c>\uD800</c>-<c>\uDFFF</c>,
    /// as the grammar documents), counting every started character, independently of the automaton.
    /// </summary>
    private static bool InString(ReadOnlySpan<byte> bytes, int chars, int min, int max)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            if (b == '"')
            {
                return chars >= min && AfterString(bytes[(i + 1)..], min, max);
            }

            chars++;
            if (b < 0x20 || (max >= 0 && chars > max))
            {
                return false;
            }

            if (b == '\\')
            {
                int length = EscapeLength(bytes[(i + 1)..]);
                if (length <= 0)
                {
                    return length == 0;
                }

                i += 1 + length;
                continue;
            }

            OperationStatus status = Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed);
            if (status != OperationStatus.Done)
            {
                return status == OperationStatus.NeedMoreData;
            }

            i += consumed;
        }

        return true;
    }

    /// <summary>Bytes of the escape after a backslash; 0 when the bytes end validly inside it, -1 when invalid.</summary>
    private static int EscapeLength(ReadOnlySpan<byte> rest)
    {
        if (rest.IsEmpty)
        {
            return 0;
        }

        if ("\"\\/bfnrt"u8.Contains(rest[0]))
        {
            return 1;
        }

        if (rest[0] != 'u')
        {
            return -1;
        }

        for (int k = 1; k <= 4; k++)
        {
            if (k == rest.Length)
            {
                return 0;
            }

            if (!Uri.IsHexDigit((char)rest[k]) || (k == 2 && rest[1] is (byte)'d' or (byte)'D' && "89abcdefABCDEF"u8.Contains(rest[2])))
            {
                return -1;
            }
        }

        return 5;
    }

    /// <summary>What may follow a closed string in the array: <c>]</c> (then nothing), or a comma, one optional space and the next string.</summary>
    private static bool AfterString(ReadOnlySpan<byte> rest, int min, int max)
    {
        if (rest.IsEmpty)
        {
            return true;
        }

        if (rest[0] == ']')
        {
            return rest.Length == 1;
        }

        if (rest[0] != ',')
        {
            return false;
        }

        int i = rest.Length > 1 && rest[1] == ' ' ? 2 : 1;
        return i == rest.Length || (rest[i] == '"' && InString(rest[(i + 1)..], 0, min, max));
    }
}
