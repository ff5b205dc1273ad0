namespace Qwen3.Net.Generation;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model emitted an end-of-turn token (<c>&lt;|im_end|&gt;</c> or <c>&lt;|endoftext|&gt;</c>, or one of <see cref="GenerationOptions.StopTokenIds"/>).</summary>
    Stop,

    /// <summary>One of <see cref="SamplingOptions.StopStrings"/> appeared in the output.</summary>
    StopString,

    /// <summary><see cref="SamplingOptions.MaxNewTokens"/> tokens were generated.</summary>
    Length,

    /// <summary>The context is full.</summary>
    ContextFull,

    /// <summary>The caller's cancellation token was cancelled.</summary>
    Cancelled,
}

/// <summary>Token counts and speeds of one generation (one chat turn).</summary>
/// <param name="PromptTokens">Tokens in the prompt.</param>
/// <param name="ReusedPromptTokens">
/// Prompt tokens not evaluated again: already in the context's KV cache from earlier turns, or taken from KV pages that
/// another context computed for the same prefix.
/// </param>
/// <param name="GeneratedTokens">Tokens the model generated, the end-of-turn token included.</param>
/// <param name="PrefillTime">Time spent evaluating the new prompt tokens.</param>
/// <param name="DecodeTime">Time spent generating, from the end of the prefill to the last token.</param>
public sealed record GenerationUsage(int PromptTokens, int ReusedPromptTokens, int GeneratedTokens, TimeSpan PrefillTime, TimeSpan DecodeTime)
{
    /// <summary>Generated tokens chosen under a <see cref="ResponseFormat"/> constraint (the end-of-turn token included; free reasoning excluded).</summary>
    public int ConstrainedSteps { get; init; }

    /// <summary>Prompt tokens that were evaluated.</summary>
    public int PrefilledTokens => PromptTokens - ReusedPromptTokens;

    /// <summary>Prefill speed, in tokens per second (0 when nothing was timed).</summary>
    public double PrefillTokensPerSecond => Rate(PrefilledTokens, PrefillTime);

    /// <summary>Generation speed, in tokens per second (0 when nothing was timed).</summary>
    public double DecodeTokensPerSecond => Rate(GeneratedTokens, DecodeTime);

    private static double Rate(int tokens, TimeSpan time) => time > TimeSpan.Zero ? tokens / time.TotalSeconds : 0;
}
