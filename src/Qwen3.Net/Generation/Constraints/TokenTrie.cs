namespace Qwen3.Net.Generation.Constraints;

/// <summary>A set of tokens as a byte trie, so a mask walk that rejects a prefix skips every token sharing it.</summary>
/// <remarks>Node 0 is the root; nodes are numbered in preorder, so each subtree is a contiguous node range.</remarks>
internal sealed class TokenTrie
{
    /// <summary>Builds the trie of the tokens <paramref name="ids"/> (all non-empty) spelled by <paramref name="tokenBytes"/>.</summary>
    public TokenTrie(byte[][] tokenBytes, List<int> ids)
    {
        ids.Sort((x, y) => tokenBytes[x].AsSpan().SequenceCompareTo(tokenBytes[y]));

        var nodeByte = new List<byte> { 0 };
        var firstChild = new List<int> { -1 };
        var nextSibling = new List<int> { -1 };
        var lastChild = new List<int> { -1 };
        var nodeDepth = new List<int> { 0 };
        var nodeTokenStarts = new List<int> { 0 };
        var nodeTokens = new List<int>();
        var path = new List<int> { 0 }; // path[d] = node for the previous token's first d bytes
        byte[] previous = [];
        foreach (int id in ids)
        {
            byte[] bytes = tokenBytes[id];
            int common = bytes.AsSpan().CommonPrefixLength(previous);
            path.RemoveRange(common + 1, path.Count - common - 1);
            for (int d = common; d < bytes.Length; d++)
            {
                int parent = path[d];
                int node = nodeByte.Count;
                nodeByte.Add(bytes[d]);
                nodeDepth.Add(d + 1);
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
        NodeDepth = [.. nodeDepth];
        FirstChild = [.. firstChild];
        NextSibling = [.. nextSibling];
        NodeTokenStarts = [.. nodeTokenStarts];
        NodeTokens = [.. nodeTokens];
        MaxDepth = ids.Count == 0 ? 0 : ids.Max(id => tokenBytes[id].Length);

        // Record each subtree's end and its bytes (all-ASCII only).
        int count = NodeByte.Length;
        SubtreeEnd = new int[count];
        SubtreeMaxDepth = new int[count];
        SubtreeAscii = new ulong[count * 2];
        var nonAscii = new bool[count];
        for (int n = count - 1; n >= 0; n--)
        {
            int end = n + 1;
            int maxDepth = NodeDepth[n];
            for (int c = FirstChild[n]; c >= 0; c = NextSibling[c])
            {
                end = SubtreeEnd[c];
                maxDepth = Math.Max(maxDepth, SubtreeMaxDepth[c]);
                SubtreeAscii[2 * n] |= SubtreeAscii[2 * c];
                SubtreeAscii[(2 * n) + 1] |= SubtreeAscii[(2 * c) + 1];
                nonAscii[n] |= nonAscii[c];
            }

            SubtreeEnd[n] = end;
            SubtreeMaxDepth[n] = maxDepth;
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

    public int NodeCount => NodeByte.Length;

    /// <summary>Length in bytes of the longest token, the deepest level a walk reaches.</summary>
    public int MaxDepth { get; }

    public byte[] NodeByte { get; }

    /// <summary>Bytes from the root to each node: the length of the tokens ending there.</summary>
    public int[] NodeDepth { get; }

    public int[] FirstChild { get; }

    public int[] NextSibling { get; }

    /// <summary>Tokens ending at node n are NodeTokens[NodeTokenStarts[n] .. NodeTokenStarts[n+1]-1].</summary>
    public int[] NodeTokenStarts { get; }

    public int[] NodeTokens { get; }

    /// <summary>One past the last node of each node's subtree.</summary>
    public int[] SubtreeEnd { get; }

    /// <summary>The deepest node of each node's subtree, itself included: the length of its longest token.</summary>
    public int[] SubtreeMaxDepth { get; }

    /// <summary>Two words per node: the ASCII bytes on the edges of its subtree, itself included; all ones when any byte is non-ASCII.</summary>
    public ulong[] SubtreeAscii { get; }
}
