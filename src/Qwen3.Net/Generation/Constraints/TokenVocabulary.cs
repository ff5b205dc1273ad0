namespace Qwen3.Net.Generation.Constraints;

/// <summary>The vocabulary as byte tries (a mask walk that rejects a prefix skips every token sharing it), with what is precomputed once per tokenizer for masks inside strings.</summary>
internal sealed class TokenVocabulary
{
    private readonly byte[][] _tokenBytes;

    /// <summary>Builds the tries and plain-token tables from token byte strings; null entries (special and added tokens) are never allowed.</summary>
    /// <param name="tokenBytes">Bytes of each token id; null for ids that are not ordinary text.</param>
    /// <param name="endTokenIds">Ids allowed exactly when the document is complete (end of turn).</param>
    public TokenVocabulary(byte[]?[] tokenBytes, IReadOnlyList<int> endTokenIds)
    {
        Size = tokenBytes.Length;
        EndTokenIds = [.. endTokenIds];
        foreach (int id in EndTokenIds)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)id, (uint)Size, nameof(endTokenIds));
        }

        var ids = new List<int>();
        var contextIds = new List<int>();
        _tokenBytes = new byte[tokenBytes.Length][];
        PlainChars = new int[tokenBytes.Length];
        for (int id = 0; id < tokenBytes.Length; id++)
        {
            _tokenBytes[id] = tokenBytes[id] ?? [];
            PlainChars[id] = -1;
            if (tokenBytes[id] is { Length: > 0 } bytes)
            {
                ids.Add(id);
                PlainChars[id] = PlainCharCount(bytes);
                if (PlainChars[id] < 0)
                {
                    contextIds.Add(id);
                }
            }
        }

        Trie = new TokenTrie(_tokenBytes, ids);
        ContextTrie = new TokenTrie(_tokenBytes, contextIds);
        MaxTokenLength = Trie.MaxDepth;

        PlainAll = new ulong[MaskWords];
        PlainUpTo = new ulong[SmallPlainCounts + 1][];
        for (int k = 0; k <= SmallPlainCounts; k++)
        {
            PlainUpTo[k] = new ulong[MaskWords];
        }

        var longPlain = new List<int>();
        for (int id = 0; id < Size; id++)
        {
            int chars = PlainChars[id];
            if (chars < 0)
            {
                continue;
            }

            PlainAll[id >> 6] |= 1UL << id;
            MaxPlainChars = Math.Max(MaxPlainChars, chars);
            for (int k = chars; k <= SmallPlainCounts; k++)
            {
                PlainUpTo[k][id >> 6] |= 1UL << id;
            }

            if (chars > SmallPlainCounts)
            {
                longPlain.Add(id);
            }
        }

        longPlain.Sort((x, y) => PlainChars[y].CompareTo(PlainChars[x]));
        LongPlainTokens = [.. longPlain];
    }

    /// <summary>Character counts up to this have a precomputed <see cref="PlainUpTo"/> bitmap; longer plain tokens are listed in <see cref="LongPlainTokens"/>.</summary>
    public const int SmallPlainCounts = 16;

    /// <summary>Every token as a byte trie.</summary>
    public TokenTrie Trie { get; }

    /// <summary>The tokens that are not plain string content (see <see cref="PlainChars"/>): the only ones a mask inside a string must walk.</summary>
    public TokenTrie ContextTrie { get; }

    /// <summary>
    /// Per token, the number of characters it adds inside a JSON string when it is <em>plain</em> (no quote, backslash or
    /// control byte; well-formed UTF-8 starting on a character boundary; a trailing partial character counts as one);
    /// -1 for any other token. Every plain token with the same count takes a string to the same automaton state.
    /// </summary>
    public int[] PlainChars { get; }

    /// <summary>The largest <see cref="PlainChars"/> count.</summary>
    public int MaxPlainChars { get; }

    /// <summary>Bitmap of every plain token.</summary>
    public ulong[] PlainAll { get; }

    /// <summary>PlainUpTo[k]: bitmap of the plain tokens of at most k characters, for k up to <see cref="SmallPlainCounts"/>.</summary>
    public ulong[][] PlainUpTo { get; }

    /// <summary>Plain tokens longer than <see cref="SmallPlainCounts"/> characters, longest first.</summary>
    public int[] LongPlainTokens { get; }

    /// <summary>Writes into <paramref name="mask"/> exactly the plain tokens of at most <paramref name="maxChars"/> characters.</summary>
    public void FillPlain(Span<ulong> mask, int maxChars)
    {
        if (maxChars <= SmallPlainCounts)
        {
            PlainUpTo[Math.Max(maxChars, 0)].CopyTo(mask);
            return;
        }

        PlainAll.CopyTo(mask);
        foreach (int id in LongPlainTokens)
        {
            if (PlainChars[id] <= maxChars)
            {
                break;
            }

            mask[id >> 6] &= ~(1UL << id);
        }
    }

    /// <summary>Characters of <paramref name="bytes"/> as plain string content (see <see cref="PlainChars"/>), or -1.</summary>
    /// <remarks>Accepts exactly the UTF-8 that <see cref="JsonLexicon.StringChar"/> accepts: no overlongs, surrogates or code points past U+10FFFF.</remarks>
    private static int PlainCharCount(ReadOnlySpan<byte> bytes)
    {
        int chars = 0;
        int i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            chars++;
            if (b < 0x80)
            {
                if (b < 0x20 || b == '"' || b == '\\')
                {
                    return -1;
                }

                i++;
                continue;
            }

            (int length, byte lo, byte hi) = b switch
            {
                >= 0xC2 and <= 0xDF => (2, (byte)0x80, (byte)0xBF),
                0xE0 => (3, (byte)0xA0, (byte)0xBF),
                0xED => (3, (byte)0x80, (byte)0x9F),
                >= 0xE1 and <= 0xEF => (3, (byte)0x80, (byte)0xBF),
                0xF0 => (4, (byte)0x90, (byte)0xBF),
                >= 0xF1 and <= 0xF3 => (4, (byte)0x80, (byte)0xBF),
                0xF4 => (4, (byte)0x80, (byte)0x8F),
                _ => (0, (byte)0, (byte)0),
            };
            if (length == 0)
            {
                return -1;
            }

            // The token may end inside the character (its rest comes with the next token).
            for (int k = 1; k < length && i + k < bytes.Length; k++)
            {
                byte c = bytes[i + k];
                if (k == 1 ? c < lo || c > hi : c < 0x80 || c > 0xBF)
                {
                    return -1;
                }
            }

            i += length;
        }

        return chars;
    }

    /// <summary>The byte that stands for the <c>&lt;tool_call&gt;</c> token in <see cref="ForToolCalls"/> (never part of valid UTF-8).</summary>
    public const byte ToolCallOpenByte = 0xFF;

    /// <summary>The byte that stands for the <c>&lt;/tool_call&gt;</c> token in <see cref="ForToolCalls"/>.</summary>
    public const byte ToolCallCloseByte = 0xFE;

    /// <summary>The Qwen3 vocabulary: every BPE token as text bytes; added tokens never; <c>&lt;|im_end|&gt;</c> and <c>&lt;|endoftext|&gt;</c> end the document.</summary>
    public static TokenVocabulary FromTokenizer(Qwen3Tokenizer tokenizer)
    {
        var bytes = new byte[]?[tokenizer.VocabularySize];
        for (int id = 0; id < bytes.Length; id++)
        {
            bytes[id] = tokenizer.IsAddedToken(id) || tokenizer.IsSpecialToken(id) ? null : tokenizer.TokenBytes(id).ToArray();
        }

        return new TokenVocabulary(bytes, [tokenizer.ImEndId, tokenizer.EndOfTextId]);
    }

    /// <summary>
    /// The Qwen3 vocabulary for tool-call grammars: as <see cref="FromTokenizer"/>, plus <c>&lt;tool_call&gt;</c> and
    /// <c>&lt;/tool_call&gt;</c> spelled as the single bytes <see cref="ToolCallOpenByte"/> and <see cref="ToolCallCloseByte"/>,
    /// so a grammar can ask for exactly those tokens; ordinary tokens holding either byte are left out (no valid JSON or
    /// tag contains them).
    /// </summary>
    public static TokenVocabulary ForToolCalls(Qwen3Tokenizer tokenizer)
    {
        var bytes = new byte[]?[tokenizer.VocabularySize];
        for (int id = 0; id < bytes.Length; id++)
        {
            if (id == tokenizer.ToolCallStartId || id == tokenizer.ToolCallEndId)
            {
                bytes[id] = [id == tokenizer.ToolCallStartId ? ToolCallOpenByte : ToolCallCloseByte];
            }
            else if (!tokenizer.IsAddedToken(id) && !tokenizer.IsSpecialToken(id))
            {
                var text = tokenizer.TokenBytes(id);
                bytes[id] = text.Contains(ToolCallOpenByte) || text.Contains(ToolCallCloseByte) ? null : text.ToArray();
            }
        }

        return new TokenVocabulary(bytes, [tokenizer.ImEndId, tokenizer.EndOfTextId]);
    }

    /// <summary>Number of token ids, and so of mask bits.</summary>
    public int Size { get; }

    /// <summary>Length of a mask in 64-bit words.</summary>
    public int MaskWords => (Size + 63) / 64;

    public int[] EndTokenIds { get; }

    public int MaxTokenLength { get; }

    /// <summary>The text bytes of a token; empty for special, added and out-of-range ids.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => (uint)id < (uint)Size ? _tokenBytes[id] : [];

    public bool IsEndToken(int id) => Array.IndexOf(EndTokenIds, id) >= 0;
}
