namespace Qwen3.Net.Tests.Tokenization;

public class Qwen3TokenizerTests
{
    private static Qwen3Tokenizer Tokenizer => SharedTokenizer.Instance;

    [Fact]
    public void Vocabulary_is_bpe_entries_plus_added_tokens() => Tokenizer.VocabularySize.Should().Be(151_669);

    [Fact]
    public void Well_known_ids_come_from_the_file()
    {
        Tokenizer.EndOfTextId.Should().Be(151643);
        Tokenizer.ImStartId.Should().Be(151644);
        Tokenizer.ImEndId.Should().Be(151645);
        Tokenizer.ToolCallStartId.Should().Be(151657);
        Tokenizer.ToolCallEndId.Should().Be(151658);
        Tokenizer.ThinkStartId.Should().Be(151667);
        Tokenizer.ThinkEndId.Should().Be(151668);
    }

    [Fact]
    public void Exactly_the_fourteen_special_true_tokens_are_special()
    {
        Enumerable.Range(0, Tokenizer.VocabularySize).Where(Tokenizer.IsSpecialToken)
            .Should().Equal(Enumerable.Range(151643, 14));
        Tokenizer.IsSpecialToken(-1).Should().BeFalse();
        Tokenizer.IsSpecialToken(Tokenizer.VocabularySize).Should().BeFalse();
    }

    [Fact]
    public void Token_lookup_covers_added_tokens_and_vocabulary_entries()
    {
        Tokenizer.TokenToId("<think>").Should().Be(151667);
        Tokenizer.TokenToId("Ġworld").Should().Be(1879);
        Tokenizer.TokenToId("no such token").Should().BeNull();
        Tokenizer.IdToToken(1879).Should().Be("Ġworld");
        Tokenizer.IdToToken(151645).Should().Be("<|im_end|>");
        Tokenizer.IdToToken(Tokenizer.VocabularySize).Should().BeNull();
        Tokenizer.IdToToken(-1).Should().BeNull();
    }

    [Fact]
    public void Encode_adds_no_bos_or_eos() => Tokenizer.Encode("Hello world").Should().Equal(9707, 1879);

    [Fact]
    public void Encode_of_empty_text_is_empty() => Tokenizer.Encode(string.Empty).Should().BeEmpty();

    [Fact]
    public void Added_tokens_are_matched_before_normalization_and_pre_tokenization()
    {
        Tokenizer.Encode("<|im_start|>user\nhi<|im_end|>").Should()
            .StartWith(new[] { Tokenizer.ImStartId }).And.EndWith(new[] { Tokenizer.ImEndId });
        Tokenizer.Encode("a<think>b").Should().HaveCount(3).And.Contain(Tokenizer.ThinkStartId);
    }

    [Fact]
    public void Encoding_twice_gives_the_same_ids_once_pieces_are_cached()
    {
        string text = "The cache must not change results: café, 𝐇𝐞𝐥𝐥𝐨, 123.";
        Tokenizer.Encode(text).Should().Equal(Tokenizer.Encode(text));
    }

    [Fact]
    public void Lone_surrogates_encode_like_replacement_characters() =>
        Tokenizer.Encode("a\uD800b").Should().Equal(Tokenizer.Encode("a\uFFFDb"));

    /// <summary>Found by fuzzing (fuzz/corpus/encode/bug-ufffe-*): .NET's normalizer throws on U+FFFE.</summary>
    [Theory]
    [InlineData("a\uFFFEb", "a\uFFFEb")]
    [InlineData("e\u0301\uFFFEe\u0301\uFFFE", "\u00E9\uFFFE\u00E9\uFFFE")]
    public void U_FFFE_is_encoded_and_the_text_around_it_normalized(string text, string expected) =>
        Tokenizer.Decode(Tokenizer.Encode(text)).Should().Be(expected);

    [Fact]
    public void Decode_overloads_agree()
    {
        int[] ids = [9707, 1879, 151645];
        Tokenizer.Decode(ids.AsSpan()).Should().Be("Hello world<|im_end|>");
        Tokenizer.Decode(ids.ToList()).Should().Be("Hello world<|im_end|>");
        Tokenizer.Decode(ids.Select(id => id), skipSpecialTokens: true).Should().Be("Hello world");
    }

    [Fact]
    public void Decode_rejects_ids_outside_the_vocabulary()
    {
        Tokenizer.Invoking(t => t.Decode(new[] { 1, Tokenizer.VocabularySize }.AsSpan())).Should()
            .Throw<ArgumentOutOfRangeException>().WithParameterName("ids");
        Tokenizer.Invoking(t => t.Decode(new List<int> { -1 })).Should()
            .Throw<ArgumentOutOfRangeException>().WithParameterName("ids");
    }

    /// <summary>Rust's from_utf8_lossy replaces each maximal invalid subsequence with one U+FFFD.</summary>
    [Theory]
    [InlineData(new byte[] { 0xE2, 0x82, 0x41 }, "\uFFFDA")]
    [InlineData(new byte[] { 0xF0, 0x80, 0x41 }, "\uFFFD\uFFFDA")]
    [InlineData(new byte[] { 0xC0, 0xAF }, "\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, "\uFFFD\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 }, "\uFFFD")]
    [InlineData(new byte[] { 0xE2, 0x82, 0xAC }, "€")]
    public void Decode_replaces_invalid_utf8_like_rust(byte[] bytes, string expected)
    {
        int[] ids = bytes.Select(b => Tokenizer.TokenToId(ByteLevelAlphabet.ByteToChar(b).ToString())!.Value).ToArray();
        Tokenizer.Decode(ids.AsSpan()).Should().Be(expected);
    }
}
