using System.Text.RegularExpressions;

namespace Qwen3.Net.Tests.Tokenization;

public class Qwen3PreTokenizerTests
{
    private const string QwenPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static TheoryData<string, string[]> KnownSplits => new()
    {
        { "Hello world", ["Hello", " world"] },
        { "Hello, world!", ["Hello", ",", " world", "!"] },

        // Supplementary-plane letters and digits: a UTF-16 regex would see lone surrogates here.
        { "𝐇𝐞𝐥𝐥𝐨's 𝟷𝟸𝟹", ["𝐇𝐞𝐥𝐥𝐨", "'s", " ", "𝟷", "𝟸", "𝟹"] },
        { " 𝒜𝒷𝒸", [" 𝒜𝒷𝒸"] },
        { "😀😀abc", ["😀😀", "abc"] },
        { "😀abc", ["😀abc"] },

        { "I'M here, they'll go", ["I", "'M", " here", ",", " they", "'ll", " go"] },
        { "don't we've you're I'd", ["don", "'t", " we", "'ve", " you", "'re", " I", "'d"] },
        { "'RE'Ve'LL", ["'RE", "'Ve", "'LL"] },
        { "'x", ["'x"] },

        { "1234", ["1", "2", "3", "4"] },
        { "a1b", ["a", "1", "b"] },

        // Whitespace runs leave their last space to the following word, except at the end of the text.
        { "a   b", ["a", "  ", " b"] },
        { "a   ", ["a", "   "] },
        { "a \n  b", ["a", " \n", " ", " b"] },
        { "a\r\n\r\nb", ["a", "\r\n\r\n", "b"] },
        { "x.\r\nY", ["x", ".\r\n", "Y"] },
        { "\tword", ["\tword"] },
        { "\u00A0word", ["\u00A0word"] },
        { "\u3000\u3000x", ["\u3000", "\u3000x"] },
        { " !!!", [" !!!"] },
        { "  !", [" ", " !"] },
        { "\n", ["\n"] },
    };

    [Theory]
    [MemberData(nameof(KnownSplits))]
    public void Splits_like_the_qwen_pattern(string text, string[] expected) => Pieces(text).Should().Equal(expected);

    [Fact]
    public void Empty_text_has_no_pieces() => Pieces(string.Empty).Should().BeEmpty();

    [Fact]
    public void Pieces_tile_every_golden_text()
    {
        foreach (GoldenTokenization golden in GoldenTokenization.Cases)
        {
            string.Concat(Pieces(golden.Text)).Should().Be(golden.Text);
        }
    }

    /// <summary>
    /// On BMP-only text, .NET's regex engine classifies characters correctly, so it serves as an independent oracle for the
    /// hand-written backtracking logic.
    /// </summary>
    [Fact]
    public void Agrees_with_the_dotnet_regex_on_text_without_surrogates()
    {
        var regex = new Regex(QwenPattern, RegexOptions.CultureInvariant);
        int compared = 0;
        foreach (GoldenTokenization golden in GoldenTokenization.Cases)
        {
            string text = golden.Text.Normalize(System.Text.NormalizationForm.FormC);
            if (text.Any(char.IsSurrogate))
            {
                continue;
            }

            Pieces(text).Should().Equal(regex.Matches(text).Select(m => m.Value), "the text is {0}", text);
            compared++;
        }

        compared.Should().BeGreaterThan(200);
    }

    [Fact]
    public void Dotnet_regex_really_does_split_astral_letters_which_is_why_the_pre_tokenizer_exists()
    {
        var regex = new Regex(QwenPattern, RegexOptions.CultureInvariant);

        regex.Matches("𝐇𝐞𝐥𝐥𝐨's").Select(m => m.Value).Should().Equal("𝐇𝐞𝐥𝐥𝐨'", "s");
        Pieces("𝐇𝐞𝐥𝐥𝐨's").Should().Equal("𝐇𝐞𝐥𝐥𝐨", "'s");
    }

    private static List<string> Pieces(string text)
    {
        var pieces = new List<string>();
        foreach (Range piece in Qwen3PreTokenizer.Split(text))
        {
            pieces.Add(text[piece]);
        }

        return pieces;
    }
}
