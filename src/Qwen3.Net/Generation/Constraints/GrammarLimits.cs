namespace Qwen3.Net.Generation.Constraints;

/// <summary>Bounds on what a schema may compile to, so a hostile or huge schema is refused instead of exhausting memory.</summary>
internal sealed record GrammarLimits
{
    public static GrammarLimits Default { get; } = new();

    /// <summary>Most automaton states a schema may compile to (roughly 40 bytes each, plus closures).</summary>
    public int MaxStates { get; init; } = 250_000;

    /// <summary>Deepest nesting of <c>$ref</c> rules (and of arrays/objects in "any JSON" values) a generated document may have.</summary>
    public int MaxDepth { get; init; } = 32;

    /// <summary>Configuration sets the lazy DFA keeps (each with a 2 KB transition table once stepped from).</summary>
    public int MaxDfaStates { get; init; } = 16_384;

    /// <summary>Token masks cached per compiled grammar (each one is vocabulary/8 bytes, 19 KB for Qwen3).</summary>
    public int MaxCachedMasks { get; init; } = 2048;
}
