using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Generation;

/// <summary>
/// Chooses each token of one generation under its <see cref="GenerationOptions.ResponseFormat"/> and think-block
/// options: forced think markers, free reasoning without end-of-turn tokens, then the grammar's token mask.
/// </summary>
/// <remarks>Every buffer is allocated here, so a step allocates nothing once the grammar's states and masks are cached.</remarks>
internal sealed class OutputConstraint
{
    private readonly TokenMatcher? _matcher;
    private readonly ulong[]? _mask;
    private readonly ulong[]? _thinkingMask;
    private readonly int _thinkStartId;
    private readonly int _thinkEndId;
    private readonly int? _maxThinkingTokens;
    private bool _forceThinkStart;
    private bool _waitingForThinkEnd;
    private bool _thinkingOpen;
    private int _thinkingTokens;

    public OutputConstraint(Qwen3Tokenizer tokenizer, GenerationOptions options, IReadOnlyList<int> stopIds)
    {
        _thinkStartId = tokenizer.ThinkStartId;
        _thinkEndId = tokenizer.ThinkEndId;
        _maxThinkingTokens = options.MaxThinkingTokens;
        _thinkingOpen = options.StartsInThinking;
        if (options.ResponseFormat is not { } format || GrammarCache.For(tokenizer).Get(format) is not { } grammar)
        {
            return;
        }

        _matcher = grammar.CreateMatcher();
        _mask = new ulong[_matcher.MaskWords];
        if (options.ConstrainAfterThinking)
        {
            _waitingForThinkEnd = true;
            _forceThinkStart = !options.StartsInThinking;

            // Reasoning is free, but the turn may not end (or open another think block) before the constrained answer.
            _thinkingMask = new ulong[_matcher.MaskWords];
            for (int id = 0; id < tokenizer.VocabularySize; id++)
            {
                _thinkingMask[id >> 6] |= 1UL << id;
            }

            foreach (int id in stopIds.Concat(grammar.Vocabulary.EndTokenIds).Append(_thinkStartId))
            {
                if ((uint)id < (uint)tokenizer.VocabularySize)
                {
                    _thinkingMask[id >> 6] &= ~(1UL << id);
                }
            }
        }
    }

    /// <summary>Tokens chosen under the grammar's mask so far.</summary>
    public int ConstrainedSteps { get; private set; }

    /// <summary>The grammar accepted an end token: the output is complete.</summary>
    public bool IsFinished => _matcher?.IsTerminated == true;

    /// <summary>Chooses the next token and records it.</summary>
    public int Next(Sampler sampler, ReadOnlySpan<float> logits)
    {
        int token;
        bool constrained = false;
        if (_forceThinkStart)
        {
            token = _thinkStartId;
            _forceThinkStart = false;
        }
        else if (_thinkingOpen && _thinkingTokens >= _maxThinkingTokens)
        {
            token = _thinkEndId;
        }
        else if (_waitingForThinkEnd)
        {
            token = sampler.Sample(logits, _thinkingMask);
        }
        else if (_matcher is not null)
        {
            _matcher.FillMask(_mask);
            token = sampler.Sample(logits, _mask);
            constrained = true;
        }
        else
        {
            token = sampler.Sample(logits);
        }

        if (constrained)
        {
            if (!_matcher!.AcceptToken(token))
            {
                throw new InvalidOperationException($"The sampler chose token {token}, which the grammar's mask did not allow.");
            }

            ConstrainedSteps++;
        }
        else if (token == _thinkStartId)
        {
            _thinkingOpen = true;
            _thinkingTokens = 0;
        }
        else if (token == _thinkEndId)
        {
            _thinkingOpen = false;
            _waitingForThinkEnd = false;
        }
        else if (_thinkingOpen)
        {
            _thinkingTokens++;
        }

        return token;
    }
}
