using System.Text;

namespace Qwen3.Net.Tests.Tokenization;

public class StreamingDetokenizerTests
{
    private static Qwen3Tokenizer Tokenizer => SharedTokenizer.Instance;

    public static TheoryData<int, string> Cases => GoldenTokenization.CaseNumbers();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Token_by_token_output_concatenates_to_the_full_decode(int caseNumber, string category)
    {
        GoldenTokenization golden = GoldenTokenization.Cases[caseNumber - 1];

        foreach (bool skip in new[] { false, true })
        {
            StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer(skip);
            var chunks = golden.Ids.Select(detokenizer.Append).Append(detokenizer.Flush()).ToList();

            string expected = skip ? golden.DecodedSkipSpecial : golden.Decoded;
            string.Concat(chunks).Should().Be(expected, "case {0} ({1}), skipSpecialTokens={2}", caseNumber, category, skip);
            foreach (string chunk in chunks)
            {
                IsWellFormed(chunk).Should().BeTrue("a chunk must not end or start inside a surrogate pair");
                if (!expected.Contains('\uFFFD'))
                {
                    chunk.Should().NotContain("\uFFFD", "an unfinished character must be held back, not replaced");
                }
            }
        }
    }

    [Fact]
    public void Holds_back_a_character_split_over_several_tokens()
    {
        string text = "\U00013000";
        IReadOnlyList<int> ids = Tokenizer.Encode(text);
        ids.Should().HaveCountGreaterThan(1, "the test needs a character that spans tokens");

        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer();
        var chunks = ids.Select(detokenizer.Append).ToList();

        chunks.Take(ids.Count - 1).Should().AllBe(string.Empty);
        chunks[^1].Should().Be(text);
        detokenizer.Flush().Should().BeEmpty();
    }

    [Fact]
    public void Flush_replaces_bytes_that_never_became_a_character()
    {
        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer();

        detokenizer.Append(ByteToken(0xE2)).Should().BeEmpty();
        detokenizer.Append(ByteToken(0x82)).Should().BeEmpty();
        detokenizer.Flush().Should().Be("\uFFFD");
        detokenizer.Flush().Should().BeEmpty();
    }

    [Fact]
    public void Emits_the_replacement_as_soon_as_the_sequence_is_known_to_be_invalid()
    {
        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer();

        detokenizer.Append(ByteToken(0xE2)).Should().BeEmpty();
        detokenizer.Append(Tokenizer.TokenToId("A")!.Value).Should().Be("\uFFFDA");
        detokenizer.Append(ByteToken(0x80)).Should().Be("\uFFFD", "a stray continuation byte can never be completed");
    }

    [Fact]
    public void Reset_forgets_held_back_bytes()
    {
        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer();
        detokenizer.Append(ByteToken(0xF0));

        detokenizer.Reset();

        detokenizer.Append(Tokenizer.TokenToId("A")!.Value).Should().Be("A");
    }

    [Fact]
    public void Skips_only_special_tokens_when_asked()
    {
        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);

        detokenizer.Append(Tokenizer.ImEndId).Should().BeEmpty();
        detokenizer.Append(Tokenizer.ThinkStartId).Should().Be("<think>");
        Tokenizer.CreateStreamingDetokenizer().Append(Tokenizer.ImEndId).Should().Be("<|im_end|>");
    }

    [Fact]
    public void Rejects_ids_outside_the_vocabulary()
    {
        StreamingDetokenizer detokenizer = Tokenizer.CreateStreamingDetokenizer();

        detokenizer.Invoking(d => d.Append(Tokenizer.VocabularySize)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("tokenId");
        detokenizer.Invoking(d => d.Append(-1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("tokenId");
    }

    [Theory]
    [InlineData(new byte[] { 0x41 }, 0)]
    [InlineData(new byte[] { 0xC3 }, 1)]
    [InlineData(new byte[] { 0x41, 0xE2, 0x82 }, 2)]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 }, 3)]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x80 }, 0)]
    [InlineData(new byte[] { 0xE0, 0x80 }, 0)] // overlong
    [InlineData(new byte[] { 0xED, 0xA0 }, 0)] // surrogate
    [InlineData(new byte[] { 0xF4, 0x90 }, 0)] // above U+10FFFF
    [InlineData(new byte[] { 0xC0 }, 0)]
    [InlineData(new byte[] { 0x80, 0x80, 0x80 }, 0)]
    public void Holds_back_only_valid_unfinished_sequences(byte[] bytes, int expected) =>
        StreamingDetokenizer.UnfinishedTailLength(bytes).Should().Be(expected);

    private static int ByteToken(byte b) => Tokenizer.TokenToId(ByteLevelAlphabet.ByteToChar(b).ToString())!.Value;

    private static bool IsWellFormed(string text)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetByteCount(text);
            return true;
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
    }
}
