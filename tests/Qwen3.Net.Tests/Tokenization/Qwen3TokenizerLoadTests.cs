namespace Qwen3.Net.Tests.Tokenization;

public sealed class Qwen3TokenizerLoadTests : IDisposable
{
    private const string QwenPipeline = """
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
          {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        """;

    private readonly string _folder = Directory.CreateTempSubdirectory("qwen3-tokenizer-tests").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Missing_file_throws_naming_it()
    {
        string path = Path.Combine(_folder, "tokenizer.json");

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(path));
    }

    [Fact]
    public void Truncated_json_throws_naming_the_file()
    {
        string path = Path.Combine(_folder, "tokenizer.json");
        using (FileStream source = File.OpenRead(Path.Combine(Fixtures.TinyModelFolder, "tokenizer.json")))
        {
            var head = new byte[100_000];
            source.ReadExactly(head);
            File.WriteAllBytes(path, head);
        }

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(path) && e.InnerException != null);
    }

    [Fact]
    public void Missing_vocab_throws_naming_the_file_and_the_field()
    {
        string path = Write($$$"""{"added_tokens": [], {{{QwenPipeline}}}, "model": {"type": "BPE", "merges": []}}""");

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(path) && e.Message.Contains("model.vocab"));
    }

    [Fact]
    public void Wrongly_typed_vocab_entry_throws_naming_the_file()
    {
        string path = Write($$$"""{"added_tokens": [], {{{QwenPipeline}}}, "model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}""");

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(path));
    }

    [Fact]
    public void A_different_pre_tokenizer_is_rejected_rather_than_silently_mis_encoded()
    {
        string path = Write("""
            {"added_tokens": [], "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "Whitespace"},
             "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
            """);

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains("pre_tokenizer"));
    }

    [Fact]
    public void Missing_chat_tokens_are_reported()
    {
        string path = Write($$$"""{"added_tokens": [], {{{QwenPipeline}}}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""");

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains("<|endoftext|>"));
    }

    [Fact]
    public void Gaps_in_the_ids_are_rejected()
    {
        string path = Write($$$"""
            {"added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}], {{{QwenPipeline}}},
             "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
            """);

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains("id 1"));
    }

    [Theory]
    [InlineData("\"vocab\": {\"a\": 0}, \"merges\": [], \"vocab\": {\"b\": 0}", "model.vocab appears more than once")]
    [InlineData("\"vocab\": {\"a\": 0}, \"merges\": [], \"merges\": []", "model.merges appears more than once")]
    public void A_repeated_vocab_or_merges_is_rejected(string model, string problem)
    {
        string path = Write($$$"""{"added_tokens": [], {{{QwenPipeline}}}, "model": {"type": "BPE", {{{model}}}}}""");

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(problem));
    }

    [Fact]
    public void A_merge_of_unknown_tokens_is_reported_naming_the_file()
    {
        // BpeTokenizer finds this one, on its own thread, while the rest of the file is still being read.
        string json = File.ReadAllText(Path.Combine(Fixtures.TinyModelFolder, "tokenizer.json"));
        int merges = json.IndexOf("\"merges\": [", StringComparison.Ordinal);
        merges.Should().BePositive();
        string path = Write(json.Insert(merges + "\"merges\": [".Length, "[\"a\", \"zzqqzz\"], "));

        Action load = () => Qwen3Tokenizer.FromFile(path);

        load.Should().Throw<ModelLoadException>().Where(e => e.FilePath == path && e.Message.Contains(path) && e.Message.Contains("zzqqzz"));
    }

    private string Write(string json)
    {
        string path = Path.Combine(_folder, "tokenizer.json");
        File.WriteAllText(path, json);
        return path;
    }
}
