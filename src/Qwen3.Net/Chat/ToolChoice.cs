namespace Qwen3.Net.Chat;

/// <summary>Whether the model may, must, or must not call tools in a turn (OpenAI's <c>tool_choice</c>).</summary>
public sealed record ToolChoice
{
    private ToolChoice(ToolChoiceKind kind, string? functionName)
    {
        Kind = kind;
        FunctionName = functionName;
    }

    /// <summary>The model decides: it may answer or call tools (the default).</summary>
    public static ToolChoice Auto { get; } = new(ToolChoiceKind.Auto, null);

    /// <summary>The tools are not rendered into the prompt, so the model answers without calling any.</summary>
    public static ToolChoice None { get; } = new(ToolChoiceKind.None, null);

    /// <summary>The turn is tool calls only: the output is constrained to calls of the offered tools with valid arguments.</summary>
    public static ToolChoice Required { get; } = new(ToolChoiceKind.Required, null);

    /// <summary>What kind of choice this is.</summary>
    public ToolChoiceKind Kind { get; }

    /// <summary>The function that must be called, for <see cref="ToolChoiceKind.Function"/>; null otherwise.</summary>
    public string? FunctionName { get; }

    /// <summary>The turn is calls of the function <paramref name="name"/> only, with arguments that validate against its parameters.</summary>
    /// <param name="name">The name of one of the offered tools.</param>
    public static ToolChoice Function(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new ToolChoice(ToolChoiceKind.Function, name);
    }
}

/// <summary>The kinds of <see cref="ToolChoice"/>.</summary>
public enum ToolChoiceKind
{
    /// <summary>The model decides.</summary>
    Auto,

    /// <summary>No tool calls: the tools are not offered.</summary>
    None,

    /// <summary>One or more calls of any offered tool.</summary>
    Required,

    /// <summary>One or more calls of one named tool.</summary>
    Function,
}
