namespace Qwen3.Net.Generation;

/// <summary>
/// Picks tokens from logits under one <see cref="SamplingOptions"/> for one generated sequence. All buffers are
/// allocated here, so <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{ulong})"/> allocates nothing per token.
/// </summary>
/// <remarks>
/// Order as in transformers: repetition penalty (prompt and generated tokens), presence penalty (generated tokens),
/// then greedy argmax at temperature 0, otherwise temperature, top-k, softmax, top-p, min-p and a draw from the
/// survivors. Candidates are ranked by score then by id, a total order, so results never depend on sort stability.
/// </remarks>
public sealed class Sampler
{
    private const byte InPrompt = 1;
    private const byte Generated = 2;

    private readonly SamplingOptions _options;
    private readonly int _vocabSize;
    private readonly float[] _scores;
    private readonly int[] _candidates;
    private readonly double[] _probabilities;
    private readonly byte[]? _seenFlags;
    private readonly int[]? _seenTokens;
    private int _seenCount;
    private Xoshiro256 _random;

    /// <param name="vocabSize">Length of every logits vector.</param>
    /// <param name="options">The sampling parameters.</param>
    /// <param name="prompt">The prompt, which the repetition penalty covers as transformers does.</param>
    /// <param name="seed">The seed used when <see cref="SamplingOptions.Seed"/> is null.</param>
    public Sampler(int vocabSize, SamplingOptions options, ReadOnlySpan<int> prompt, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _vocabSize = vocabSize;
        _scores = new float[vocabSize];
        int candidateCapacity = options.TopK > 0 ? Math.Min(options.TopK, vocabSize) : vocabSize;
        _candidates = new int[candidateCapacity];
        _probabilities = new double[candidateCapacity];
        _random = new Xoshiro256(options.Seed ?? seed);

        if (options.RepetitionPenalty != 1f || options.PresencePenalty != 0f)
        {
            _seenFlags = new byte[vocabSize];
            _seenTokens = new int[vocabSize];
            if (options.RepetitionPenalty != 1f)
            {
                foreach (int token in prompt)
                {
                    Mark(token, InPrompt);
                }
            }
        }
    }

    /// <summary>Records a generated token, so the penalties cover it from the next <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{ulong})"/> on.</summary>
    public void Accept(int token)
    {
        if (_seenFlags is not null)
        {
            Mark(token, Generated);
        }
    }

    /// <summary>Chooses the next token.</summary>
    /// <param name="logits">One score per vocabulary entry.</param>
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, default);

    /// <summary>Chooses the next token among the allowed ones: the others are removed before penalties, temperature, top-k, top-p and min-p.</summary>
    /// <param name="logits">One score per vocabulary entry.</param>
    /// <param name="allowed">
    /// Bit <c>id % 64</c> of word <c>id / 64</c> is set when token <c>id</c> may be chosen; ids past the mask are not
    /// allowed. Empty allows every token.
    /// </param>
    /// <exception cref="ArgumentException">The mask allows no token.</exception>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<ulong> allowed)
    {
        if (logits.Length != _vocabSize)
        {
            throw new ArgumentException($"Expected {_vocabSize} logits, got {logits.Length}.", nameof(logits));
        }

        var scores = _scores.AsSpan();
        logits.CopyTo(scores);
        int firstAllowed = allowed.IsEmpty ? 0 : ApplyMask(scores, allowed);
        ApplyPenalties(scores);

        if (_options.Temperature == 0f)
        {
            int best = ArgMax(scores);

            // Only when every allowed logit is -inf (or NaN) does the argmax land on a removed token.
            return float.IsNegativeInfinity(scores[best]) || float.IsNaN(scores[best]) ? firstAllowed : best;
        }

        int count = RankCandidates(scores);
        var candidates = _candidates.AsSpan(0, count);
        var probabilities = _probabilities.AsSpan(0, count);

        // Softmax over the candidates only: tokens top-k removed have probability zero, exactly as with -inf masking.
        double inverseTemperature = 1.0 / _options.Temperature;
        double max = scores[candidates[0]] * inverseTemperature;
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            double p = Math.Exp(scores[candidates[i]] * inverseTemperature - max);
            probabilities[i] = p;
            sum += p;
        }

        // top-p keeps a token while the mass ranked strictly above it is below top_p (transformers' rule, seen from the top).
        int kept = count;
        if (_options.TopP < 1f)
        {
            double threshold = _options.TopP * sum;
            double above = 0;
            for (int i = 0; i < count; i++)
            {
                if (i > 0 && above >= threshold)
                {
                    kept = i;
                    break;
                }

                above += probabilities[i];
            }
        }

        // min-p compares with the most likely token; renormalising after top-p would not change the ratio.
        if (_options.MinP > 0f)
        {
            double floor = _options.MinP * probabilities[0];
            for (int i = 1; i < kept; i++)
            {
                if (probabilities[i] < floor)
                {
                    kept = i;
                    break;
                }
            }
        }

        double total = 0;
        for (int i = 0; i < kept; i++)
        {
            total += probabilities[i];
        }

        double target = _random.NextDouble() * total;
        double cumulative = 0;
        for (int i = 0; i < kept; i++)
        {
            cumulative += probabilities[i];
            if (target < cumulative)
            {
                return candidates[i];
            }
        }

        // Rounding can leave target a hair above the last cumulative sum; the last survivor is then the draw.
        return candidates[kept - 1];
    }

    /// <summary>Sets the score of every token <paramref name="allowed"/> leaves out to -inf; returns the first allowed id.</summary>
    private static int ApplyMask(Span<float> scores, ReadOnlySpan<ulong> allowed)
    {
        int first = -1;
        for (int word = 0; word * 64 < scores.Length; word++)
        {
            ulong bits = word < allowed.Length ? allowed[word] : 0;
            int start = word * 64;
            int end = Math.Min(start + 64, scores.Length);
            if (first < 0 && bits != 0)
            {
                first = start + System.Numerics.BitOperations.TrailingZeroCount(bits);
            }

            if (bits == ulong.MaxValue && end - start == 64)
            {
                continue;
            }

            for (int id = start; id < end; id++)
            {
                if ((bits & (1UL << (id - start))) == 0)
                {
                    scores[id] = float.NegativeInfinity;
                }
            }
        }

        if (first < 0 || first >= scores.Length)
        {
            throw new ArgumentException("The token mask allows no token.", nameof(allowed));
        }

        return first;
    }

    private void Mark(int token, byte flag)
    {
        if ((uint)token >= (uint)_vocabSize)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, "Token id outside the vocabulary.");
        }

        if (_seenFlags![token] == 0)
        {
            _seenTokens![_seenCount++] = token;
        }

        _seenFlags[token] |= flag;
    }

    private void ApplyPenalties(Span<float> scores)
    {
        if (_seenFlags is null)
        {
            return;
        }

        float repetition = _options.RepetitionPenalty;
        float presence = _options.PresencePenalty;
        for (int i = 0; i < _seenCount; i++)
        {
            int token = _seenTokens![i];
            byte flags = _seenFlags[token];
            float score = scores[token];
            if (repetition != 1f)
            {
                score = score < 0 ? score * repetition : score / repetition;
            }

            if ((flags & Generated) != 0)
            {
                score -= presence;
            }

            scores[token] = score;
        }
    }

    private static int ArgMax(ReadOnlySpan<float> scores)
    {
        // The first maximum wins, as torch.argmax does.
        int best = 0;
        float bestScore = scores[0];
        for (int i = 1; i < scores.Length; i++)
        {
            if (scores[i] > bestScore)
            {
                bestScore = scores[i];
                best = i;
            }
        }

        return best;
    }

    /// <summary>Fills <see cref="_candidates"/> with the best tokens, best first; returns how many.</summary>
    private int RankCandidates(ReadOnlySpan<float> scores)
    {
        var order = new CandidateOrder(_scores);
        int k = _candidates.Length;
        var candidates = _candidates.AsSpan();
        if (k == _vocabSize)
        {
            // Tokens a mask removed (-inf) have probability zero: leaving them out keeps them from ever being drawn.
            int count = 0;
            for (int i = 0; i < k; i++)
            {
                if (!float.IsNegativeInfinity(scores[i]))
                {
                    candidates[count++] = i;
                }
            }

            if (count == 0)
            {
                candidates[count++] = 0;
            }

            HeapSort(candidates[..count], order);
            return count;
        }

        // A min-heap of the k best so far: its root is the weakest survivor, replaced whenever a better token shows up.
        for (int i = 0; i < k; i++)
        {
            candidates[i] = i;
            SiftUp(candidates, i, order);
        }

        for (int token = k; token < scores.Length; token++)
        {
            if (order.Compare(token, candidates[0]) < 0)
            {
                candidates[0] = token;
                SiftDown(candidates, 0, k, order);
            }
        }

        HeapSort(candidates, order);

        // Fewer allowed tokens than k: the removed ones sort last, with probability zero, and are dropped.
        while (k > 1 && float.IsNegativeInfinity(scores[candidates[k - 1]]))
        {
            k--;
        }

        return k;
    }

    // Span.Sort with a comparer allocates a delegate per call; a heap sort over our own order does not.
    private static void HeapSort(Span<int> items, CandidateOrder order)
    {
        for (int i = items.Length / 2 - 1; i >= 0; i--)
        {
            SiftDown(items, i, items.Length, order);
        }

        // The root is the worst remaining token; moving it to the end leaves the best first.
        for (int end = items.Length - 1; end > 0; end--)
        {
            (items[0], items[end]) = (items[end], items[0]);
            SiftDown(items, 0, end, order);
        }
    }

    // In the heap, "greater" under CandidateOrder (a worse token) sits nearer the root.
    private static void SiftUp(Span<int> heap, int index, CandidateOrder order)
    {
        while (index > 0)
        {
            int parent = (index - 1) / 2;
            if (order.Compare(heap[index], heap[parent]) <= 0)
            {
                break;
            }

            (heap[index], heap[parent]) = (heap[parent], heap[index]);
            index = parent;
        }
    }

    private static void SiftDown(Span<int> heap, int index, int count, CandidateOrder order)
    {
        while (true)
        {
            int left = 2 * index + 1;
            if (left >= count)
            {
                return;
            }

            int worst = left;
            int right = left + 1;
            if (right < count && order.Compare(heap[right], heap[left]) > 0)
            {
                worst = right;
            }

            if (order.Compare(heap[worst], heap[index]) <= 0)
            {
                return;
            }

            (heap[index], heap[worst]) = (heap[worst], heap[index]);
            index = worst;
        }
    }

    /// <summary>Higher score first, then lower id: negative when <c>a</c> ranks before <c>b</c>.</summary>
    private readonly struct CandidateOrder(float[] scores) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            float sa = scores[a];
            float sb = scores[b];
            if (sa > sb)
            {
                return -1;
            }

            if (sa < sb)
            {
                return 1;
            }

            return a.CompareTo(b);
        }
    }
}
