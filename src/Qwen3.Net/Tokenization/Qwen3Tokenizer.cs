using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Qwen3.Net;

/// <summary>
/// The Qwen3 byte-level BPE tokenizer, loaded from a Hugging Face <c>tokenizer.json</c>. Encoding and decoding reproduce
/// Hugging Face <c>tokenizers</c> exactly: added tokens are cut out first, the rest is NFC-normalized, split by Qwen's
/// pre-tokenizer pattern on whole code points, mapped to bytes and merged by BPE rank.
/// </summary>
/// <remarks>
/// Encoding never adds BOS/EOS or any other token: Qwen's post-processor adds none.
/// </remarks>
public sealed class Qwen3Tokenizer
{
    /// <summary>The end-of-document token; Qwen3 also uses it as the padding token.</summary>
    public const string EndOfTextToken = "<|endoftext|>";

    /// <summary>Opens a chat turn; followed by the role name.</summary>
    public const string ImStartToken = "<|im_start|>";

    /// <summary>Closes a chat turn; the end-of-sequence token of Qwen3 chat models.</summary>
    public const string ImEndToken = "<|im_end|>";

    /// <summary>Opens the model's reasoning block.</summary>
    public const string ThinkStartToken = "<think>";

    /// <summary>Closes the model's reasoning block.</summary>
    public const string ThinkEndToken = "</think>";

    /// <summary>Opens a tool call emitted by the model.</summary>
    public const string ToolCallStartToken = "<tool_call>";

    /// <summary>Closes a tool call emitted by the model.</summary>
    public const string ToolCallEndToken = "</tool_call>";

    private const string QwenSplitPattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // Long pieces are rare (whitespace runs, long words) and would crowd the cache without paying back.
    private const int MaxCachedPieceLength = 64;
    private const int MaxCachedPieces = 200_000;

    private readonly BpeTokenizer _bpe;
    private readonly string[] _tokens;
    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenByteStarts;
    private readonly bool[] _special;
    private readonly Dictionary<string, int> _addedTokenIds;
    // Built at the first TokenToId: BpeTokenizer keeps its own, private, and a second one for every model cost 4 MB.
    private Dictionary<string, int>? _vocab;
    private readonly Dictionary<char, string[]> _addedTokensByFirstChar;
    private readonly SearchValues<char> _addedTokenFirstChars;
    private readonly ConcurrentDictionary<string, int[]> _pieceCache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _pieceCacheLookup;

    private Qwen3Tokenizer(BpeTokenizer bpe, Lookups lookups, string path)
    {
        _bpe = bpe;
        _tokens = lookups.Tokens;
        _special = lookups.Special;
        _addedTokenIds = lookups.AddedIds;
        _tokenBytes = lookups.TokenBytes;
        _tokenByteStarts = lookups.TokenByteStarts;
        _pieceCacheLookup = _pieceCache.GetAlternateLookup<ReadOnlySpan<char>>();

        // Longest first, so the first hit at a position is the leftmost-longest match Hugging Face's Aho-Corasick finds.
        // Plain loops rather than LINQ: each generic LINQ instantiation over char is JIT-compiled on a cold load.
        var byFirstChar = new Dictionary<char, List<string>>();
        foreach (string token in _addedTokenIds.Keys)
        {
            if (!byFirstChar.TryGetValue(token[0], out List<string>? group))
            {
                byFirstChar.Add(token[0], group = []);
            }

            int at = group.Count;
            while (at > 0 && group[at - 1].Length < token.Length)
            {
                at--;
            }

            group.Insert(at, token);
        }

        _addedTokensByFirstChar = new Dictionary<char, string[]>(byFirstChar.Count);
        foreach ((char first, List<string> group) in byFirstChar)
        {
            _addedTokensByFirstChar.Add(first, group.ToArray());
        }

        _addedTokenFirstChars = SearchValues.Create([.. _addedTokensByFirstChar.Keys]);

        EndOfTextId = RequireAddedToken(EndOfTextToken, path);
        ImStartId = RequireAddedToken(ImStartToken, path);
        ImEndId = RequireAddedToken(ImEndToken, path);
        ThinkStartId = RequireAddedToken(ThinkStartToken, path);
        ThinkEndId = RequireAddedToken(ThinkEndToken, path);
        ToolCallStartId = RequireAddedToken(ToolCallStartToken, path);
        ToolCallEndId = RequireAddedToken(ToolCallEndToken, path);
    }

    /// <summary>Number of token ids: the BPE vocabulary plus the added tokens (151,669 for Qwen3).</summary>
    /// <remarks>The model's embedding may have more rows than this; those extra ids are padding and cannot be decoded.</remarks>
    public int VocabularySize => _tokens.Length;

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c>, as listed in the file.</summary>
    public int EndOfTextId { get; }

    /// <summary>Id of <c>&lt;|im_start|&gt;</c>, as listed in the file.</summary>
    public int ImStartId { get; }

    /// <summary>Id of <c>&lt;|im_end|&gt;</c>, as listed in the file.</summary>
    public int ImEndId { get; }

    /// <summary>Id of <c>&lt;think&gt;</c>, as listed in the file.</summary>
    public int ThinkStartId { get; }

    /// <summary>Id of <c>&lt;/think&gt;</c>, as listed in the file.</summary>
    public int ThinkEndId { get; }

    /// <summary>Id of <c>&lt;tool_call&gt;</c>, as listed in the file.</summary>
    public int ToolCallStartId { get; }

    /// <summary>Id of <c>&lt;/tool_call&gt;</c>, as listed in the file.</summary>
    public int ToolCallEndId { get; }

    /// <summary>Loads the tokenizer from a Hugging Face <c>tokenizer.json</c>.</summary>
    /// <param name="tokenizerJsonPath">Path of the <c>tokenizer.json</c> file.</param>
    /// <returns>The loaded tokenizer.</returns>
    /// <exception cref="ModelLoadException">The file is missing, unreadable, not valid JSON, or not a Qwen2/Qwen3 byte-level BPE tokenizer.</exception>
    public static Qwen3Tokenizer FromFile(string tokenizerJsonPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);

        // Not a pooled buffer: the shared pool would keep Qwen's 11 MB file (in a 16 MiB array) for the life of the process.
        byte[] json;
        try
        {
            using var stream = new FileStream(tokenizerJsonPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
            if (stream.Length > Array.MaxLength)
            {
                throw new IOException($"The file is {stream.Length} bytes long, more than a tokenizer file can be.");
            }

            json = GC.AllocateUninitializedArray<byte>((int)stream.Length);
            stream.ReadExactly(json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ModelLoadException($"Cannot read the tokenizer file '{tokenizerJsonPath}': {e.Message}", tokenizerJsonPath, inner: e);
        }

        // BpeTokenizer.Create is most of the load time and needs nothing but the vocabulary and merges, so it runs on its
        // own thread and builds its dictionaries from them while the rest of the file is parsed and this thread builds
        // the lookups this class keeps. Its dictionaries are private, so the vocabulary is hashed twice either way.
        var file = new TokenizerJson();
        Task<BpeTokenizer> bpeTask = Task.Factory.StartNew(
            static state =>
            {
                var streamed = (TokenizerJson)state!;
                return BpeTokenizer.Create(new BpeOptions(streamed.Vocab) { Merges = streamed.Merges, ByteLevel = true });
            },
            file,
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        try
        {
            try
            {
                file.Read(json);
                return FromJson(file, bpeTask, tokenizerJsonPath);
            }
            catch
            {
                // The problem found on this thread is the one to report, and BpeTokenizer could only complain about the
                // same broken data; but it must be done with the lists before this returns.
                ((Task)bpeTask).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
                throw;
            }
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"The tokenizer file '{tokenizerJsonPath}' is not valid JSON: {e.Message}", tokenizerJsonPath, inner: e);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or KeyNotFoundException)
        {
            // JsonElement accessors and BpeTokenizer.Create report wrongly typed or inconsistent content this way.
            throw new ModelLoadException($"The tokenizer file '{tokenizerJsonPath}' is malformed: {e.Message}", tokenizerJsonPath, inner: e);
        }
    }

    /// <summary>Encodes text into token ids. Added tokens written in the text (such as <c>&lt;|im_start|&gt;</c>) become their ids.</summary>
    /// <param name="text">The text to encode.</param>
    /// <returns>The token ids; no BOS/EOS is added.</returns>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>((text.Length / 3) + 4);
        int position = 0;
        while (position < text.Length)
        {
            int matchStart = FindAddedToken(text, position, out int addedId, out int matchLength);
            int segmentEnd = matchStart < 0 ? text.Length : matchStart;
            if (segmentEnd > position)
            {
                EncodeSegment(text.AsSpan(position, segmentEnd - position), ids);
            }

            if (matchStart < 0)
            {
                break;
            }

            ids.Add(addedId);
            position = matchStart + matchLength;
        }

        return ids;
    }

    /// <summary>Decodes token ids into text, replacing invalid UTF-8 with U+FFFD exactly as Hugging Face does.</summary>
    /// <param name="ids">The token ids.</param>
    /// <param name="skipSpecialTokens">Drop the tokens marked special (such as <c>&lt;|im_end|&gt;</c>); <c>&lt;think&gt;</c> and the tool tokens are kept.</param>
    /// <returns>The decoded text.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="VocabularySize"/>.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ids switch
        {
            int[] array => Decode(array.AsSpan(), skipSpecialTokens),
            List<int> list => Decode(CollectionsMarshal.AsSpan(list), skipSpecialTokens),
            _ => Decode(ids.ToArray().AsSpan(), skipSpecialTokens),
        };
    }

    /// <summary>Decodes token ids into text, replacing invalid UTF-8 with U+FFFD exactly as Hugging Face does.</summary>
    /// <param name="ids">The token ids.</param>
    /// <param name="skipSpecialTokens">Drop the tokens marked special (such as <c>&lt;|im_end|&gt;</c>); <c>&lt;think&gt;</c> and the tool tokens are kept.</param>
    /// <returns>The decoded text.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is negative or not below <see cref="VocabularySize"/>.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        int byteCount = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)_tokens.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at index {i} is outside 0..{_tokens.Length - 1}.");
            }

            if (!skipSpecialTokens || !_special[id])
            {
                byteCount += _tokenByteStarts[id + 1] - _tokenByteStarts[id];
            }
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(byteCount);
        try
        {
            int written = 0;
            foreach (int id in ids)
            {
                if (!skipSpecialTokens || !_special[id])
                {
                    ReadOnlySpan<byte> bytes = TokenBytes(id);
                    bytes.CopyTo(buffer.AsSpan(written));
                    written += bytes.Length;
                }
            }

            // .NET replaces each maximal invalid subsequence with one U+FFFD, the same rule as Rust's from_utf8_lossy.
            return Encoding.UTF8.GetString(buffer, 0, written);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Creates a decoder that turns generated token ids into text one id at a time.</summary>
    /// <param name="skipSpecialTokens">Drop the tokens marked special, as <see cref="Decode(ReadOnlySpan{int}, bool)"/> does.</param>
    /// <returns>A new decoder with empty state.</returns>
    public StreamingDetokenizer CreateStreamingDetokenizer(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>Whether <paramref name="id"/> is one of the added tokens marked special (such as <c>&lt;|im_end|&gt;</c>).</summary>
    /// <param name="id">A token id; ids outside the vocabulary are not special.</param>
    /// <returns>True for the tokens that <c>skipSpecialTokens</c> drops.</returns>
    public bool IsSpecialToken(int id) => (uint)id < (uint)_special.Length && _special[id];

    /// <summary>Looks up the id of a raw token: an added token such as <c>&lt;think&gt;</c> or a vocabulary entry in its byte-level spelling (such as <c>Ġworld</c>).</summary>
    /// <param name="token">The raw token text.</param>
    /// <returns>The id, or null when the token is not in the vocabulary.</returns>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _addedTokenIds.TryGetValue(token, out int id) ? id : LazyInitializer.EnsureInitialized(ref _vocab, BuildVocab).TryGetValue(token, out id) ? id : null;
    }

    /// <summary>The BPE vocabulary's entries by their text (the load checked that no entry is listed twice).</summary>
    private Dictionary<string, int> BuildVocab()
    {
        var vocab = new Dictionary<string, int>(_tokens.Length - _addedTokenIds.Count, StringComparer.Ordinal);
        for (int id = 0; id < _tokens.Length; id++)
        {
            if (!IsAddedToken(id))
            {
                vocab.Add(_tokens[id], id);
            }
        }

        return vocab;
    }

    /// <summary>The raw token for an id: the added token's text, or the vocabulary entry in its byte-level spelling.</summary>
    /// <param name="id">A token id.</param>
    /// <returns>The raw token, or null when the id is outside the vocabulary.</returns>
    public string? IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : null;

    /// <summary>Whether <paramref name="id"/> is an added token (special or not, such as <c>&lt;think&gt;</c>) rather than a BPE vocabulary entry.</summary>
    internal bool IsAddedToken(int id) => (uint)id < (uint)_tokens.Length && _addedTokenIds.TryGetValue(_tokens[id], out int added) && added == id;

    /// <summary>The bytes a token contributes to decoded text.</summary>
    internal ReadOnlySpan<byte> TokenBytes(int id) => _tokenBytes.AsSpan(_tokenByteStarts[id], _tokenByteStarts[id + 1] - _tokenByteStarts[id]);

    /// <summary>
    /// Builds the tokenizer from its parts as another model file stores them (a GGUF's <c>tokenizer.ggml.*</c> arrays):
    /// the BPE vocabulary, the merges as <c>"left right"</c> lines, and the added tokens.
    /// </summary>
    /// <exception cref="ModelLoadException">The parts are inconsistent; the message names <paramref name="path"/>.</exception>
    internal static Qwen3Tokenizer FromParts(
        IReadOnlyList<KeyValuePair<string, int>> vocab, IReadOnlyList<string> merges, List<(string Content, int Id, bool Special)> added, string path)
    {
        Lookups lookups = BuildLookups(vocab, added, path);
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocab) { Merges = merges, ByteLevel = true });
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or KeyNotFoundException)
        {
            throw new ModelLoadException($"The tokenizer in '{path}' is malformed: {e.Message}", path, inner: e);
        }

        return new Qwen3Tokenizer(bpe, lookups, path);
    }

    private static Qwen3Tokenizer FromJson(TokenizerJson file, Task<BpeTokenizer> bpeTask, string path)
    {
        if (file.RootKind != JsonValueKind.Object)
        {
            throw Malformed(path, "the top level is not a JSON object");
        }

        RequirePipeline(file, path);

        RequireKind(file.ModelKind, JsonValueKind.Object, path, "model");
        if (file.ModelType.ValueKind != JsonValueKind.Undefined && file.ModelType.GetString() != "BPE")
        {
            throw Malformed(path, $"model.type is '{file.ModelType}', expected 'BPE'");
        }

        RequireKind(file.VocabKind, JsonValueKind.Object, path, "model.vocab");
        RequireKind(file.MergesKind, JsonValueKind.Array, path, "model.merges");
        RequireKind(file.AddedTokens.ValueKind, JsonValueKind.Array, path, "added_tokens");
        if (file.VocabProblem is not null)
        {
            throw Malformed(path, file.VocabProblem);
        }

        var added = new List<(string Content, int Id, bool Special)>();
        foreach (JsonElement entry in file.AddedTokens.EnumerateArray())
        {
            string content = RequireProperty(entry, "content", JsonValueKind.String, path, "added_tokens[].content").GetString()!;
            int id = RequireProperty(entry, "id", JsonValueKind.Number, path, "added_tokens[].id").GetInt32();
            bool isSpecial = entry.TryGetProperty("special", out JsonElement specialElement) && specialElement.GetBoolean();
            if (content.Length == 0)
            {
                throw Malformed(path, $"added token {id} is empty");
            }

            added.Add((content, id, isSpecial));
        }

        Lookups lookups = BuildLookups(file.Vocab, added, path);
        if (file.MergesProblem is not null)
        {
            throw Malformed(path, file.MergesProblem);
        }

        return new Qwen3Tokenizer(bpeTask.GetAwaiter().GetResult(), lookups, path);
    }

    private static Lookups BuildLookups(
        IReadOnlyList<KeyValuePair<string, int>> entries, List<(string Content, int Id, bool Special)> added, string path)
    {
        var vocab = new HashSet<string>(entries.Count, StringComparer.Ordinal);
        int maxAddedId = -1;
        foreach ((string token, _) in entries)
        {
            if (!vocab.Add(token))
            {
                throw Malformed(path, $"model.vocab lists '{token}' twice");
            }
        }

        foreach ((_, int id, _) in added)
        {
            maxAddedId = Math.Max(maxAddedId, id);
        }

        int size = Math.Max(vocab.Count, maxAddedId + 1);
        var tokens = new string?[size];
        foreach ((string token, int id) in entries)
        {
            if ((uint)id >= (uint)size || tokens[id] is not null)
            {
                throw Malformed(path, $"model.vocab gives '{token}' the id {id}, which is out of range or already taken");
            }

            tokens[id] = token;
        }

        var special = new bool[size];
        var addedIds = new Dictionary<string, int>(added.Count, StringComparer.Ordinal);
        foreach ((string content, int id, bool isSpecial) in added)
        {
            if (id < 0 || (tokens[id] is not null && tokens[id] != content) || !addedIds.TryAdd(content, id))
            {
                throw Malformed(path, $"added token '{content}' has the id {id}, which is negative, taken by another token, or listed twice");
            }

            tokens[id] = content;
            special[id] = isSpecial;
        }

        int gap = Array.IndexOf(tokens, null);
        if (gap >= 0)
        {
            throw Malformed(path, $"no token has the id {gap}, yet higher ids exist");
        }

        // The gap check above leaves no null behind.
        string[] complete = tokens!;
        (byte[] tokenBytes, int[] tokenByteStarts) = BuildTokenBytes(complete);
        return new Lookups(complete, special, addedIds, tokenBytes, tokenByteStarts);
    }

    /// <summary>
    /// Rejects files whose normalizer, pre-tokenizer or decoder differ from Qwen's, because this class hard-wires that
    /// pipeline and would otherwise produce wrong ids without complaint.
    /// </summary>
    private static void RequirePipeline(TokenizerJson file, string path)
    {
        if (!HasType(file.Normalizer, "NFC"))
        {
            throw Malformed(path, "the normalizer is not NFC");
        }

        if (!HasQwenSplit(file.PreTokenizer))
        {
            throw Malformed(path, "the pre_tokenizer does not use Qwen's Split pattern");
        }

        if (!HasType(file.Decoder, "ByteLevel"))
        {
            throw Malformed(path, "the decoder is not ByteLevel");
        }
    }

    private static void RequireKind(JsonValueKind actual, JsonValueKind expected, string path, string jsonPath)
    {
        if (actual == JsonValueKind.Undefined)
        {
            throw Malformed(path, $"{jsonPath} is missing");
        }

        if (actual != expected)
        {
            throw Malformed(path, $"{jsonPath} is {actual}, expected {expected}");
        }
    }

    private static bool HasType(JsonElement element, string type) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String && t.GetString() == type;

    private static bool HasQwenSplit(JsonElement preTokenizer)
    {
        if (HasType(preTokenizer, "Sequence") && preTokenizer.TryGetProperty("pretokenizers", out JsonElement steps) && steps.ValueKind == JsonValueKind.Array)
        {
            return steps.EnumerateArray().Any(HasQwenSplit);
        }

        return HasType(preTokenizer, "Split")
            && preTokenizer.TryGetProperty("pattern", out JsonElement pattern)
            && pattern.ValueKind == JsonValueKind.Object
            && pattern.TryGetProperty("Regex", out JsonElement regex)
            && regex.ValueKind == JsonValueKind.String
            && regex.GetString() == QwenSplitPattern;
    }

    private static JsonElement RequireProperty(JsonElement parent, string name, JsonValueKind kind, string path, string jsonPath)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out JsonElement value))
        {
            throw Malformed(path, $"{jsonPath} is missing");
        }

        if (value.ValueKind != kind)
        {
            throw Malformed(path, $"{jsonPath} is {value.ValueKind}, expected {kind}");
        }

        return value;
    }

    private static ModelLoadException Malformed(string path, string problem) =>
        new($"The tokenizer file '{path}' is malformed: {problem}.", path);

    private static (byte[] Bytes, int[] Starts) BuildTokenBytes(string[] tokens)
    {
        // Hugging Face's ByteLevel decoder maps a token through the alphabet only when every character is in it, and
        // otherwise emits the token's own UTF-8; added tokens take the second path.
        var starts = new int[tokens.Length + 1];
        var inAlphabet = new bool[tokens.Length];
        int total = 0;
        for (int id = 0; id < tokens.Length; id++)
        {
            string token = tokens[id];
            starts[id] = total;
            inAlphabet[id] = IsInAlphabet(token);
            total += inAlphabet[id] ? token.Length : Encoding.UTF8.GetByteCount(token);
        }

        starts[tokens.Length] = total;
        var bytes = new byte[total];
        for (int id = 0; id < tokens.Length; id++)
        {
            string token = tokens[id];
            if (inAlphabet[id])
            {
                for (int i = 0; i < token.Length; i++)
                {
                    bytes[starts[id] + i] = (byte)ByteLevelAlphabet.CharToByte(token[i]);
                }
            }
            else
            {
                Encoding.UTF8.GetBytes(token, bytes.AsSpan(starts[id]));
            }
        }

        return (bytes, starts);
    }

    private static bool IsInAlphabet(string token)
    {
        if (token.AsSpan().ContainsAnyExceptInRange('\0', '\u0143'))
        {
            return false;
        }

        foreach (char c in token)
        {
            if (ByteLevelAlphabet.CharToByte(c) < 0)
            {
                return false;
            }
        }

        return true;
    }

    private int RequireAddedToken(string content, string path) =>
        _addedTokenIds.TryGetValue(content, out int id) ? id : throw Malformed(path, $"the added token {content} is missing");

    /// <summary>Finds the leftmost added token at or after <paramref name="start"/>, taking the longest one at that position.</summary>
    private int FindAddedToken(string text, int start, out int id, out int length)
    {
        int position = start;
        while (position < text.Length)
        {
            int offset = text.AsSpan(position).IndexOfAny(_addedTokenFirstChars);
            if (offset < 0)
            {
                break;
            }

            position += offset;
            foreach (string candidate in _addedTokensByFirstChar[text[position]])
            {
                if (text.AsSpan(position).StartsWith(candidate, StringComparison.Ordinal))
                {
                    id = _addedTokenIds[candidate];
                    length = candidate.Length;
                    return position;
                }
            }

            position++;
        }

        id = 0;
        length = 0;
        return -1;
    }

    private void EncodeSegment(ReadOnlySpan<char> segment, List<int> ids)
    {
        string? normalized = null;

        // Characters below U+0300 are all unchanged by NFC and cannot combine with a neighbour, so Latin-1 text skips
        // the normalizer; most other text is already NFC and is checked without copying.
        if (segment.ContainsAnyInRange('\u0300', '\uFFFF'))
        {
            if (segment.ContainsAnyInRange('\uD800', '\uDFFF') && HasLoneSurrogate(segment))
            {
                // A Rust string cannot hold a lone surrogate and the normalizer rejects one, so replace it with U+FFFD
                // as any UTF-8 conversion of the text would.
                normalized = Nfc(Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(segment.ToString())));
            }
            else if (segment.Contains('\uFFFE') || !segment.IsNormalized(NormalizationForm.FormC))
            {
                normalized = Nfc(segment.ToString());
            }
        }

        ReadOnlySpan<char> text = normalized ?? segment;
        foreach (Range piece in Qwen3PreTokenizer.Split(text))
        {
            EncodePiece(text[piece], ids);
        }
    }

    /// <summary>
    /// NFC of text that may contain U+FFFE, which .NET's normalizer rejects (ICU reserves it). It is a noncharacter that
    /// never combines, so the text on either side of it normalizes on its own.
    /// </summary>
    private static string Nfc(string text) => text.Contains('\uFFFE')
        ? string.Join('\uFFFE', text.Split('\uFFFE').Select(part => part.Normalize(NormalizationForm.FormC)))
        : text.Normalize(NormalizationForm.FormC);

    private static bool HasLoneSurrogate(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    private void EncodePiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (_pieceCacheLookup.TryGetValue(piece, out int[]? cached))
        {
            ids.AddRange(cached);
            return;
        }

        IReadOnlyList<int> encoded = _bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false);
        if (piece.Length <= MaxCachedPieceLength)
        {
            if (_pieceCache.Count >= MaxCachedPieces)
            {
                // Crude but bounded: long-running servers see unbounded distinct pieces, and a full reset is cheap to refill.
                _pieceCache.Clear();
            }

            _pieceCacheLookup.TryAdd(piece, [.. encoded]);
        }

        ids.AddRange(encoded);
    }

    /// <summary>The tables this class keeps besides the BPE model, built while BpeTokenizer builds its own.</summary>
    private sealed record Lookups(
        string[] Tokens,
        bool[] Special,
        Dictionary<string, int> AddedIds,
        byte[] TokenBytes,
        int[] TokenByteStarts);
}
