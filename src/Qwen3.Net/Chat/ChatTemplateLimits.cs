namespace Qwen3.Net.Chat;

/// <summary>
/// Bounds on parsing and rendering a chat template, which is code from the model's publisher. A template that exceeds one
/// fails with a <see cref="ChatTemplateException"/> whose message names the limit, instead of exhausting the stack,
/// memory or time. Immutable; every property must be positive, or setting it throws <see cref="ArgumentOutOfRangeException"/>.
/// </summary>
/// <remarks>The defaults are far above what real chat templates need, so only hostile or broken templates meet them.</remarks>
public sealed record ChatTemplateLimits
{
    /// <summary>The default limits.</summary>
    public static ChatTemplateLimits Default { get; } = new();

    /// <summary>
    /// How deeply the template may nest: statement blocks, parentheses, operators, filters, attribute and item accesses,
    /// calls and literals each add a level. It also bounds the nesting of values (tool JSON, lists and dicts the template
    /// builds) when they are converted, printed or compared. Default 256.
    /// </summary>
    public int MaxNestingDepth
    {
        get;
        init => field = Positive(value, nameof(MaxNestingDepth));
    } = 256;

    /// <summary>How many macro calls may be active at once, which bounds macro recursion. Default 64.</summary>
    public int MaxCallDepth
    {
        get;
        init => field = Positive(value, nameof(MaxCallDepth));
    } = 64;

    /// <summary>
    /// How much work one render may do, in steps: one per statement, expression and loop iteration, plus one per
    /// 16 characters or items an operation builds or reads (a substring search counts its worst case), so this bounds
    /// both the time and the allocation of a render. Default 5,000,000, about a second of work; Qwen3's template takes
    /// about 160 steps per message.
    /// </summary>
    public long MaxSteps
    {
        get;
        init => field = Positive(value, nameof(MaxSteps));
    } = 5_000_000;

    /// <summary>Longest string, in UTF-16 characters, that an operator, filter or method may produce. Default 16,777,216.</summary>
    public int MaxStringLength
    {
        get;
        init => field = Positive(value, nameof(MaxStringLength));
    } = 16 * 1024 * 1024;

    /// <summary>
    /// Longest list or tuple that <c>range</c>, <c>+</c>, <c>*</c>, filters or methods may produce, and most characters a
    /// loop or filter may iterate in one string. Default 1,000,000.
    /// </summary>
    public int MaxListLength
    {
        get;
        init => field = Positive(value, nameof(MaxListLength));
    } = 1_000_000;

    /// <summary>Longest rendered prompt, in UTF-16 characters. Default 16,777,216.</summary>
    public int MaxOutputLength
    {
        get;
        init => field = Positive(value, nameof(MaxOutputLength));
    } = 16 * 1024 * 1024;

    private static T Positive<T>(T value, string name)
        where T : System.Numerics.INumber<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value, name);
        return value;
    }
}
