namespace Qwen3.Net.Generation.Constraints;

/// <summary>The vocabulary as byte tries (a mask walk that rejects a prefix skips every token sharing it), with what is precomputed once per tokenizer for masks inside strings.</summary>
internal sealed class TokenVocabulary
{
    private readonly byte[][] _tokenBytes;
    private readonly TokenCountTable _plain;
    private readonly Dictionary<(ulong Low, ulong High), TokenCountTable?> _classTables = [];
    private readonly StringCountTable?[] _stringCounts = new StringCountTable?[StringLexer.LexCount];
    private int _classTableCount;

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
        var plainChars = new int[tokenBytes.Length];
        for (int id = 0; id < tokenBytes.Length; id++)
        {
            _tokenBytes[id] = tokenBytes[id] ?? [];
            plainChars[id] = -1;
            if (tokenBytes[id] is { Length: > 0 } bytes)
            {
                ids.Add(id);
                plainChars[id] = PlainCharCount(bytes);
                if (plainChars[id] < 0)
                {
                    contextIds.Add(id);
                }
            }
        }

        Trie = new TokenTrie(_tokenBytes, ids);
        ContextTrie = new TokenTrie(_tokenBytes, contextIds);
        MaxTokenLength = Trie.MaxDepth;
        _plain = new TokenCountTable(plainChars, MaskWords);
    }

    /// <summary>Every token as a byte trie.</summary>
    public TokenTrie Trie { get; }

    /// <summary>The tokens that are not plain string content (see <see cref="PlainChars"/>): the only ones a mask inside a string must walk.</summary>
    public TokenTrie ContextTrie { get; }

    /// <summary>
    /// Per token, the number of characters it adds inside a JSON string when it is <em>plain</em> (no quote, backslash or
    /// control byte; well-formed UTF-8 starting on a character boundary; a trailing partial character counts as one);
    /// -1 for any other token. Every plain token with the same count takes a string to the same automaton state.
    /// </summary>
    public int[] PlainChars => _plain.Counts;

    /// <summary>The largest <see cref="PlainChars"/> count.</summary>
    public int MaxPlainChars => _plain.MaxCount;

    /// <summary>Writes into <paramref name="mask"/> exactly the plain tokens of at most <paramref name="maxChars"/> characters.</summary>
    public void FillPlain(Span<ulong> mask, int maxChars) => _plain.Fill(mask, maxChars);

    /// <summary>
    /// Each token's character count inside a string from lexer position <paramref name="lex"/>, for the masks of counted
    /// strings (<see cref="CountedPosition"/>); built on first use, about 1 MB each.
    /// </summary>
    public StringCountTable StringCounts(StringLex lex)
    {
        return Volatile.Read(ref _stringCounts[(int)lex]) ?? Build();

        StringCountTable Build()
        {
            lock (_stringCounts)
            {
                StringCountTable? table = _stringCounts[(int)lex];
                if (table == null)
                {
                    table = new StringCountTable(_tokenBytes, lex, MaskWords);
                    Volatile.Write(ref _stringCounts[(int)lex], table);
                }

                return table;
            }
        }
    }

    /// <summary>
    /// The tokens spelled only with the ASCII bytes of a class (<see cref="ClassRun"/>), counted in bytes; null when the
    /// class has too few of them to be worth a table (a walk over them is cheap), or when the table limit is reached.
    /// Built on first use and kept: a grammar's classes (letters and digits, hex, ...) recur in every schema using them.
    /// </summary>
    public TokenCountTable? ClassTable(ClassRun run)
    {
        lock (_classTables)
        {
            if (_classTables.TryGetValue((run.Low, run.High), out TokenCountTable? known))
            {
                return known;
            }

            if (_classTables.Count >= MaxClassLookups || _classTableCount >= MaxClassTables)
            {
                return null;
            }

            List<int> members = ClassMembers(run);
            TokenCountTable? table = null;
            if (members.Count >= MinClassTableTokens)
            {
                var counts = new int[Size];
                Array.Fill(counts, -1);
                foreach (int id in members)
                {
                    counts[id] = _tokenBytes[id].Length;
                }

                table = new TokenCountTable(counts, MaskWords);
            }

            _classTables.Add((run.Low, run.High), table);
            _classTableCount += table == null ? 0 : 1;
            return table;
        }
    }

    /// <summary>The tokens spelled only with the class's bytes, found in the trie so a small class costs little.</summary>
    private List<int> ClassMembers(ClassRun run)
    {
        var members = new List<int>();
        var pending = new Stack<int>();
        pending.Push(0);
        while (pending.TryPop(out int node))
        {
            for (int t = Trie.NodeTokenStarts[node]; t < Trie.NodeTokenStarts[node + 1]; t++)
            {
                members.Add(Trie.NodeTokens[t]);
            }

            for (int child = Trie.FirstChild[node]; child >= 0; child = Trie.NextSibling[child])
            {
                if (run.Contains(Trie.NodeByte[child]))
                {
                    pending.Push(child);
                }
            }
        }

        return members;
    }

    /// <summary>Fewer tokens of a class than this get no table.</summary>
    private const int MinClassTableTokens = 512;

    /// <summary>At most this many class tables (about 0.35 MB each for Qwen3) per vocabulary.</summary>
    private const int MaxClassTables = 16;

    /// <summary>At most this many classes are looked at per vocabulary (each costs a pass over the tokens once).</summary>
    private const int MaxClassLookups = 64;

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
