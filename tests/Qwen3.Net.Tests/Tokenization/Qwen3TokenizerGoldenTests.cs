namespace Qwen3.Net.Tests.Tokenization;

public class Qwen3TokenizerGoldenTests
{
    public static TheoryData<int, string> Cases => GoldenTokenization.CaseNumbers();

    [Fact]
    public void Golden_file_has_all_265_cases() => GoldenTokenization.Cases.Should().HaveCount(265);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_matches_hugging_face(int caseNumber, string category)
    {
        GoldenTokenization golden = GoldenTokenization.Cases[caseNumber - 1];

        SharedTokenizer.Instance.Encode(golden.Text).Should().Equal(golden.Ids, "case {0} ({1}) is {2}", caseNumber, category, Escape(golden.Text));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_matches_hugging_face(int caseNumber, string category)
    {
        GoldenTokenization golden = GoldenTokenization.Cases[caseNumber - 1];

        SharedTokenizer.Instance.Decode(golden.Ids).Should().Be(golden.Decoded, "case {0} ({1})", caseNumber, category);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_skipping_special_tokens_matches_hugging_face(int caseNumber, string category)
    {
        GoldenTokenization golden = GoldenTokenization.Cases[caseNumber - 1];

        SharedTokenizer.Instance.Decode(golden.Ids, skipSpecialTokens: true).Should().Be(golden.DecodedSkipSpecial, "case {0} ({1})", caseNumber, category);
    }

    private static string Escape(string text) =>
        string.Concat(text.Select(c => c is >= ' ' and < '\u007f' ? c.ToString() : $"\\u{(int)c:X4}"));
}
