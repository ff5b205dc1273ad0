namespace Qwen3.Net.Generation;

/// <summary>
/// How the next token is chosen from the model's logits, and when generation stops. Immutable; every property is
/// validated when set, so an invalid value throws <see cref="ArgumentOutOfRangeException"/> naming it.
/// </summary>
/// <remarks>
/// The pipeline is the one transformers uses: repetition penalty, presence penalty, temperature, top-k, softmax,
/// top-p, min-p, then a draw. Start from <see cref="ForThinking"/> or <see cref="ForNonThinking"/> (the Qwen3 model
/// card's recommendations) and change what you need with a <c>with</c> expression.
/// </remarks>
public sealed record SamplingOptions
{
    /// <summary>The model card's recommendation with thinking enabled: T=0.6, top-p 0.95, top-k 20, min-p 0.</summary>
    public static SamplingOptions ForThinking { get; } = new() { Temperature = 0.6f, TopP = 0.95f, TopK = 20, MinP = 0f };

    /// <summary>The model card's recommendation with thinking disabled: T=0.7, top-p 0.8, top-k 20, min-p 0.</summary>
    public static SamplingOptions ForNonThinking { get; } = new() { Temperature = 0.7f, TopP = 0.8f, TopK = 20, MinP = 0f };

    /// <summary>Most stop strings one generation takes.</summary>
    public const int MaxStopStrings = 64;

    /// <summary>Longest stop string, in UTF-16 characters.</summary>
    public const int MaxStopStringLength = 1024;

    /// <summary>Greedy decoding: always the most likely token (temperature 0), deterministic without a seed.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f, TopP = 1f, TopK = 0, MinP = 0f };

    /// <summary>The model card's recommendation with thinking enabled or disabled.</summary>
    /// <param name="thinking">Whether the turn thinks.</param>
    public static SamplingOptions For(bool thinking) => thinking ? ForThinking : ForNonThinking;

    /// <summary>Divides the logits before sampling; 0 picks the most likely token. Must be finite and not negative.</summary>
    public float Temperature
    {
        get;
        init
        {
            if (!float.IsFinite(value) || value < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(Temperature), value, "Temperature must be a finite number >= 0 (0 is greedy).");
            }

            field = value;
        }
    } = 1f;

    /// <summary>Keeps only the <c>TopK</c> most likely tokens; 0 disables the filter. Must not be negative.</summary>
    public int TopK
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(TopK));
            field = value;
        }
    }

    /// <summary>Keeps the smallest set of most likely tokens whose probabilities add up to at least <c>TopP</c>; in (0, 1], 1 disables it.</summary>
    public float TopP
    {
        get;
        init
        {
            if (!(value > 0 && value <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(TopP), value, "TopP must be in (0, 1].");
            }

            field = value;
        }
    } = 1f;

    /// <summary>Drops tokens less likely than <c>MinP</c> times the most likely one; in [0, 1], 0 disables it.</summary>
    public float MinP
    {
        get;
        init
        {
            if (!(value >= 0 && value <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(MinP), value, "MinP must be in [0, 1].");
            }

            field = value;
        }
    }

    /// <summary>
    /// Subtracted from the logit of every token already generated in this turn (the OpenAI/vLLM definition), to curb
    /// endless repetition; the model card suggests up to 1.5 when that happens. In [-2, 2]; 0 disables it.
    /// </summary>
    public float PresencePenalty
    {
        get;
        init
        {
            if (!(value >= -2 && value <= 2))
            {
                throw new ArgumentOutOfRangeException(nameof(PresencePenalty), value, "PresencePenalty must be in [-2, 2].");
            }

            field = value;
        }
    }

    /// <summary>
    /// transformers' repetition penalty over the prompt and the generated tokens: a positive logit is divided by it,
    /// a negative one multiplied. Must be finite and positive; 1 disables it.
    /// </summary>
    public float RepetitionPenalty
    {
        get;
        init
        {
            if (!float.IsFinite(value) || value <= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), value, "RepetitionPenalty must be a finite number > 0 (1 disables it).");
            }

            field = value;
        }
    } = 1f;

    /// <summary>Seeds the random draws: the same seed, prompt and options give the same tokens on every platform. Null draws a fresh seed.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Most tokens generated in one turn, reasoning included. At least 1; the model card suggests 32768.</summary>
    public int MaxNewTokens
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(MaxNewTokens));
            field = value;
        }
    } = 32768;

    /// <summary>
    /// Extra strings that end the turn when they appear in the generated text; the text before them is kept, the
    /// string itself is not. At most <see cref="MaxStopStrings"/> strings, each non-empty and at most
    /// <see cref="MaxStopStringLength"/> characters (every token is checked against all of them). The model's
    /// end-of-turn tokens always stop generation.
    /// </summary>
    public IReadOnlyList<string> StopStrings
    {
        get;
        init
        {
            ArgumentNullException.ThrowIfNull(value, nameof(StopStrings));
            var copy = value.ToArray();
            if (copy.Length > MaxStopStrings)
            {
                throw new ArgumentOutOfRangeException(nameof(StopStrings), copy.Length, $"At most {MaxStopStrings} stop strings are allowed.");
            }

            foreach (var s in copy)
            {
                if (string.IsNullOrEmpty(s) || s.Length > MaxStopStringLength)
                {
                    throw new ArgumentOutOfRangeException(nameof(StopStrings), s?.Length ?? 0, $"Stop strings must be 1 to {MaxStopStringLength} characters long.");
                }
            }

            // A private copy: the caller's list may change after it was handed over.
            field = Array.AsReadOnly(copy);
        }
    } = Array.Empty<string>();

    /// <inheritdoc/>
    public bool Equals(SamplingOptions? other) =>
        other is not null && Temperature == other.Temperature && TopK == other.TopK && TopP == other.TopP && MinP == other.MinP &&
        PresencePenalty == other.PresencePenalty && RepetitionPenalty == other.RepetitionPenalty && Seed == other.Seed &&
        MaxNewTokens == other.MaxNewTokens && StopStrings.SequenceEqual(other.StopStrings);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Temperature, TopK, TopP, MinP, PresencePenalty, RepetitionPenalty, Seed, MaxNewTokens);
}
