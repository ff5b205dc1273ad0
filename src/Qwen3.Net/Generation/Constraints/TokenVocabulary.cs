namespace Qwen3.Net.Generation.Constraints;

/// <summary>The vocabulary as a byte trie, so a mask walk that rejects a prefix skips every token sharing it.</summary>
internal sealed class TokenVocabulary
{
    private readonly byte[][] _tokenBytes;

    /// <summary>Builds the trie from token byte strings; null entries (special and added tokens) are never allowed.</summary>
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
        _tokenBytes = new byte[tokenBytes.Length][];
        for (int id = 0; id < tokenBytes.Length; id++)
        {
            _tokenBytes[id] = tokenBytes[id] ?? [];
            if (tokenBytes[id] is { Length: > 0 })
            {
                ids.Add(id);
            }
        }

        ids.Sort((x, y) => _tokenBytes[x].AsSpan().SequenceCompareTo(_tokenBytes[y]));

        var nodeByte = new List<byte> { 0 };
        var firstChild = new List<int> { -1 };
        var nextSibling = new List<int> { -1 };
        var lastChild = new List<int> { -1 };
        var nodeTokenStarts = new List<int> { 0 };
        var nodeTokens = new List<int>();
        var path = new List<int> { 0 }; // path[d] = node for the previous token's first d bytes
        byte[] previous = [];
        foreach (int id in ids)
        {
            byte[] bytes = _tokenBytes[id];
            int common = bytes.AsSpan().CommonPrefixLength(previous);
            path.RemoveRange(common + 1, path.Count - common - 1);
            for (int d = common; d < bytes.Length; d++)
            {
                int parent = path[d];
                int node = nodeByte.Count;
                nodeByte.Add(bytes[d]);
                firstChild.Add(-1);
                nextSibling.Add(-1);
                lastChild.Add(-1);
                nodeTokenStarts.Add(nodeTokens.Count);
                if (lastChild[parent] < 0)
                {
                    firstChild[parent] = node;
                }
                else
                {
                    nextSibling[lastChild[parent]] = node;
                }

                lastChild[parent] = node;
                path.Add(node);
            }

            // Nodes are created in sorted (pre-)order, so the tokens ending at each node are contiguous.
            nodeTokens.Add(id);
            previous = bytes;
        }

        nodeTokenStarts.Add(nodeTokens.Count);
        NodeByte = [.. nodeByte];
        FirstChild = [.. firstChild];
        NextSibling = [.. nextSibling];
        NodeTokenStarts = [.. nodeTokenStarts];
        NodeTokens = [.. nodeTokens];
        MaxTokenLength = ids.Count == 0 ? 0 : ids.Max(id => _tokenBytes[id].Length);

        // Preorder numbering makes each subtree a contiguous node range; record its end and its bytes (all-ASCII only).
        int count = NodeByte.Length;
        SubtreeEnd = new int[count];
        SubtreeAscii = new ulong[count * 2];
        var nonAscii = new bool[count];
        for (int n = count - 1; n >= 0; n--)
        {
            int end = n + 1;
            for (int c = FirstChild[n]; c >= 0; c = NextSibling[c])
            {
                end = SubtreeEnd[c];
                SubtreeAscii[2 * n] |= SubtreeAscii[2 * c];
                SubtreeAscii[(2 * n) + 1] |= SubtreeAscii[(2 * c) + 1];
                nonAscii[n] |= nonAscii[c];
            }

            SubtreeEnd[n] = end;
            if (n > 0)
            {
                byte b = NodeByte[n];
                nonAscii[n] |= b >= 0x80;
                if (b < 0x80)
                {
                    SubtreeAscii[(2 * n) + (b >> 6)] |= 1UL << b;
                }
            }
        }

        for (int n = 0; n < count; n++)
        {
            if (nonAscii[n])
            {
                SubtreeAscii[2 * n] = ulong.MaxValue;
                SubtreeAscii[(2 * n) + 1] = ulong.MaxValue;
            }
        }
    }

    /// <summary>One past the last node of each node's subtree (nodes are numbered in preorder).</summary>
    public int[] SubtreeEnd { get; }

    /// <summary>Two words per node: the ASCII bytes on the edges of its subtree, itself included; all ones when any byte is non-ASCII.</summary>
    public ulong[] SubtreeAscii { get; }

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

    public byte[] NodeByte { get; }

    public int[] FirstChild { get; }

    public int[] NextSibling { get; }

    public int[] NodeTokenStarts { get; }

    public int[] NodeTokens { get; }

    /// <summary>The text bytes of a token; empty for special, added and out-of-range ids.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => (uint)id < (uint)Size ? _tokenBytes[id] : [];

    public bool IsEndToken(int id) => Array.IndexOf(EndTokenIds, id) >= 0;
}
