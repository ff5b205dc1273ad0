namespace Qwen3.Net.Generation.Constraints;

/// <summary>
/// The tokens of one kind (plain string content, or spelled only with one ASCII class), each with a count (characters
/// or bytes), as bitmaps by count, so "every such token of at most k" is one copy instead of a walk.
/// </summary>
internal sealed class TokenCountTable
{
    /// <summary>Counts up to this have a precomputed bitmap; longer tokens are listed in <see cref="LongTokens"/>.</summary>
    public const int SmallCounts = 16;

    private readonly ulong[] _all;
    private readonly ulong[][] _upTo;

    /// <param name="counts">Per token id, its count, or -1 for a token not of this kind.</param>
    /// <param name="maskWords">Length of a mask in 64-bit words.</param>
    public TokenCountTable(int[] counts, int maskWords)
    {
        Counts = counts;
        _all = new ulong[maskWords];
        var longTokens = new List<int>();
        for (int id = 0; id < counts.Length; id++)
        {
            if (counts[id] >= 0)
            {
                Members++;
                MaxCount = Math.Max(MaxCount, counts[id]);
                _all[id >> 6] |= 1UL << id;
                if (counts[id] > SmallCounts)
                {
                    longTokens.Add(id);
                }
            }
        }

        _upTo = new ulong[Math.Min(MaxCount, SmallCounts) + 1][];
        for (int k = 0; k < _upTo.Length; k++)
        {
            _upTo[k] = new ulong[maskWords];
        }

        for (int id = 0; id < counts.Length; id++)
        {
            if (counts[id] >= 0 && counts[id] < _upTo.Length)
            {
                _upTo[counts[id]][id >> 6] |= 1UL << id;
            }
        }

        // Each bitmap so far holds one count; "at most k" is the union of those up to k.
        for (int k = 1; k < _upTo.Length; k++)
        {
            for (int w = 0; w < maskWords; w++)
            {
                _upTo[k][w] |= _upTo[k - 1][w];
            }
        }

        longTokens.Sort((x, y) => counts[y].CompareTo(counts[x]));
        LongTokens = [.. longTokens];
    }

    /// <summary>Per token id, its count, or -1 for a token not of this kind.</summary>
    public int[] Counts { get; }

    /// <summary>The largest count.</summary>
    public int MaxCount { get; }

    /// <summary>How many tokens are of this kind.</summary>
    public int Members { get; }

    /// <summary>Tokens with a count above <see cref="SmallCounts"/>, largest first.</summary>
    public int[] LongTokens { get; }

    /// <summary>Writes into <paramref name="mask"/> exactly the tokens of this kind with a count of at most <paramref name="maxCount"/>.</summary>
    public void Fill(Span<ulong> mask, int maxCount)
    {
        if (maxCount < _upTo.Length)
        {
            _upTo[Math.Max(maxCount, 0)].CopyTo(mask);
            return;
        }

        _all.CopyTo(mask);
        foreach (int id in LongTokens)
        {
            if (Counts[id] <= maxCount)
            {
                break;
            }

            mask[id >> 6] &= ~(1UL << id);
        }
    }

    /// <summary>Clears from <paramref name="mask"/> the tokens of this kind with a count above <paramref name="maxCount"/>.</summary>
    public void KeepAtMost(Span<ulong> mask, int maxCount)
    {
        if (maxCount >= MaxCount)
        {
            return;
        }

        if (maxCount < _upTo.Length)
        {
            ulong[] keep = _upTo[Math.Max(maxCount, 0)];
            ulong[] all = _all;
            for (int i = 0; i < mask.Length; i++)
            {
                mask[i] &= keep[i] | ~all[i];
            }

            return;
        }

        foreach (int id in LongTokens)
        {
            if (Counts[id] <= maxCount)
            {
                break;
            }

            mask[id >> 6] &= ~(1UL << id);
        }
    }
}
