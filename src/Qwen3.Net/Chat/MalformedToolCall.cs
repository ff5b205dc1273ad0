namespace Qwen3.Net.Chat;

/// <summary>
/// A <c>&lt;tool_call&gt;</c> block the model produced that is not a valid call: the text is kept so nothing the model
/// said is lost, with the reason it could not be parsed.
/// </summary>
/// <param name="Text">The text between <c>&lt;tool_call&gt;</c> and <c>&lt;/tool_call&gt;</c> (or the end of the output, if the block was never closed).</param>
/// <param name="Error">Why it is not a call, e.g. the JSON parser's message or a missing <c>name</c>.</param>
public sealed record MalformedToolCall(string Text, string Error);
